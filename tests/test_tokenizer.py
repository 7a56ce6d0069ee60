"""tensorweave.models.Tokenizer has Hugging Face's call shape (spec/models.md, "Tokenizers"): the
oracle is transformers' fast tokenizer wrapping an identical ``tokenizers`` object, compared call
by call; and a transformers tokenizer works wherever tensorweave takes a tokenizer."""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest

from tensorweave.frontends.models import PARAMETER_SHAPES, config_from_dict
from tensorweave.models import BatchEncoding, Model, Tokenizer

from conftest import IN_CI

if IN_CI:
    import transformers
else:
    transformers = pytest.importorskip("transformers")

WORDS = [
    "[PAD]",
    "[UNK]",
    "[CLS]",
    "[SEP]",
    "the",
    "cat",
    "sat",
    "on",
    "mat",
    "a",
    "dog",
    "##s",
    "ran",
    ".",
    ",",
]
BPE_TOKENS = (
    ["<|endoftext|>", "<|im_start|>", "<|im_end|>"] + list("abcdefghijklmnopqrstuvwxyz") + ["Ġ", "\u010a"]
)
CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
TEXTS = ["the cat sat", "a dog", "the cats sat on the mat . the dog ran", "Cat"]


def _wordpiece():
    from tokenizers import Tokenizer as _Tok
    from tokenizers import decoders, models, normalizers, pre_tokenizers, processors

    t = _Tok(models.WordPiece({w: i for i, w in enumerate(WORDS)}, unk_token="[UNK]"))
    t.normalizer = normalizers.BertNormalizer(lowercase=True)
    t.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    t.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", 2), ("[SEP]", 3)],
    )
    t.decoder = decoders.WordPiece()
    t.add_special_tokens(["[PAD]", "[UNK]", "[CLS]", "[SEP]"])  # as a saved BERT tokenizer.json has them
    return t


@pytest.fixture(scope="module")
def bert_pair(tmp_path_factory):
    """(ours from tokenizer.json + tokenizer_config.json, transformers' from the same files), per
    padding side."""
    d = tmp_path_factory.mktemp("wordpiece")
    _wordpiece().save(str(d / "tokenizer.json"))
    (d / "tokenizer_config.json").write_text(
        json.dumps({"pad_token": "[PAD]", "unk_token": "[UNK]", "model_max_length": 8})
    )
    out = {}
    for side in ("right", "left"):
        ours = Tokenizer.from_file(str(d / "tokenizer.json"), padding_side=side)
        ref = transformers.PreTrainedTokenizerFast(
            tokenizer_file=str(d / "tokenizer.json"),
            pad_token="[PAD]",
            unk_token="[UNK]",
            cls_token="[CLS]",
            sep_token="[SEP]",
            model_max_length=8,
            padding_side=side,
        )
        out[side] = ours, ref
    return out


def _bpe(**kwargs):
    return Tokenizer.from_bpe(
        BPE_TOKENS,
        [],
        BPE_TOKENS[:3],
        split_digits=False,
        chat_template=CHATML,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        bos_token="<|im_start|>",
        **kwargs,
    )


@pytest.fixture(scope="module")
def chat_pair():
    ours = _bpe()
    ref = transformers.PreTrainedTokenizerFast(
        tokenizer_object=_bpe().backend,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        bos_token="<|im_start|>",
        padding_side="left",
    )
    ref.chat_template = CHATML
    return ours, ref


def _plain(enc):
    return {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in dict(enc).items()}


CALLS = [
    (TEXTS[0], {}),
    (TEXTS, {}),
    (TEXTS, {"padding": True}),
    (TEXTS, {"padding": "longest", "return_tensors": "np"}),
    (TEXTS, {"padding": "max_length", "truncation": True, "max_length": 6, "return_tensors": "np"}),
    (TEXTS[0], {"padding": "max_length"}),  # model_max_length (8)
    (TEXTS, {"max_length": 3}),  # max_length alone turns truncation on
    (TEXTS, {"truncation": True}),  # to model_max_length
    (TEXTS, {"padding": True, "return_token_type_ids": True, "return_tensors": "np"}),
    (TEXTS, {"return_attention_mask": False}),
    (TEXTS[2], {"add_special_tokens": False}),
    (TEXTS[0], {"return_tensors": "np"}),
    (TEXTS[:1], {"padding": True, "truncation": True, "max_length": 2}),
]


@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("text, kwargs", CALLS)
def test_call_shapes_equal_transformers(bert_pair, side, text, kwargs):
    ours, ref = bert_pair[side]
    got, want = ours(text, **kwargs), ref(text, **kwargs)
    assert isinstance(got, BatchEncoding)
    assert list(got) == list(want)
    assert _plain(got) == _plain(want)
    if kwargs.get("return_tensors") == "np":
        assert all(isinstance(v, np.ndarray) and v.dtype == np.int64 for v in got.values())
    else:
        assert all(isinstance(v, list) for v in got.values())
    assert ours.encode(text if isinstance(text, str) else text[0]) == ref.encode(
        text if isinstance(text, str) else text[0]
    )


def test_batch_encoding_answers_keys_and_attributes(bert_pair):
    ours, _ = bert_pair["right"]
    enc = ours(TEXTS[:2], padding=True)
    assert enc.input_ids is enc["input_ids"] and enc.attention_mask == [[1] * 5, [1, 1, 1, 1, 0]]
    assert dict(**enc).keys() == {"input_ids", "attention_mask"}
    with pytest.raises(AttributeError):
        enc.token_type_ids  # noqa: B018


def test_return_tensors_give_each_frameworks_arrays(bert_pair):
    ours, _ = bert_pair["right"]
    torch = pytest.importorskip("torch")
    pt = ours(TEXTS, padding=True, return_tensors="pt")
    assert isinstance(pt.input_ids, torch.Tensor) and pt.input_ids.dtype == torch.int64
    assert pt.input_ids.tolist() == ours(TEXTS, padding=True)["input_ids"]
    jnp = pytest.importorskip("jax.numpy")
    jx = ours(TEXTS, padding=True, return_tensors="jax")
    assert isinstance(jx["input_ids"], jnp.ndarray) and jx["input_ids"].shape == pt.input_ids.shape
    tf = pytest.importorskip("tensorflow")
    t = ours(TEXTS[0], return_tensors="tf")
    assert isinstance(t["input_ids"], tf.Tensor) and tuple(t["input_ids"].shape) == (1, 5)
    with pytest.raises(ValueError, match="return_tensors must be None or one of"):
        ours(TEXTS, return_tensors="mlx")


@pytest.mark.parametrize("kind", ["np", "pt"])
def test_a_ragged_batch_with_return_tensors_is_hugging_faces_error(bert_pair, kind):
    ours, ref = bert_pair["right"]
    with pytest.raises(ValueError, match="Unable to create tensor, you should probably activate truncation"):
        ours(TEXTS, return_tensors=kind)
    if kind == "pt":
        with pytest.raises(ValueError, match="Unable to create tensor"):
            ref(TEXTS, return_tensors=kind)


def test_a_missing_framework_names_the_pip_extra(bert_pair, monkeypatch):
    ours, _ = bert_pair["right"]
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch -> ImportError
    with pytest.raises(
        ImportError, match=r"return_tensors='pt' needs torch, .*pip install 'tensorweave\[torch\]'"
    ):
        ours(TEXTS, padding=True, return_tensors="pt")


def test_padding_needs_a_pad_token_as_in_hugging_face():
    tok = Tokenizer.from_bpe(BPE_TOKENS, [], BPE_TOKENS[:3], split_digits=False)
    assert tok(["ab", "a"])["input_ids"] == [[3, 4], [3]]  # no padding asked: fine
    with pytest.raises(ValueError, match="Asking to pad but the tokenizer does not have a padding token"):
        tok(["ab", "a"], padding=True)
    tok.pad_token = "<|endoftext|>"
    assert tok(["ab", "a"], padding=True)["input_ids"] == [[3, 4], [0, 3]]


def test_decode_and_token_conversions_equal_transformers(bert_pair, chat_pair):
    for ours, ref in (bert_pair["right"], chat_pair):
        ids = ours(TEXTS if ours is bert_pair["right"][0] else ["ab c", "<|im_start|>x<|im_end|>"])[
            "input_ids"
        ]
        for seq in ids:
            for skip in (False, True):
                assert ours.decode(seq, skip_special_tokens=skip) == ref.decode(seq, skip_special_tokens=skip)
            assert ours.convert_ids_to_tokens(seq) == ref.convert_ids_to_tokens(seq)
            assert ours.decode(np.asarray(seq)) == ours.decode(seq)
        assert ours.batch_decode(ids, skip_special_tokens=True) == ref.batch_decode(
            ids, skip_special_tokens=True
        )
        assert ours.convert_ids_to_tokens(ids[0][0]) == ref.convert_ids_to_tokens(ids[0][0])
        assert (ours.pad_token_id, ours.eos_token_id, ours.bos_token_id) == (
            ref.pad_token_id,
            ref.eos_token_id,
            ref.bos_token_id,
        )
        assert len(ours) == len(ref)


def test_apply_chat_template_has_hugging_faces_defaults(chat_pair):
    ours, ref = chat_pair
    chat = [{"role": "user", "content": "hi there"}, {"role": "assistant", "content": "yo"}]
    # defaults: tokenize=True, add_generation_prompt=False (ids as a list, as HF 4.x / return_dict=False)
    assert ours.apply_chat_template(chat) == ref.apply_chat_template(chat, return_dict=False)
    assert not ours.apply_chat_template(chat, tokenize=False).endswith("assistant\n")
    for gen in (False, True):
        assert ours.apply_chat_template(
            chat, tokenize=False, add_generation_prompt=gen
        ) == ref.apply_chat_template(chat, tokenize=False, add_generation_prompt=gen)
        assert ours.apply_chat_template(chat, add_generation_prompt=gen) == ref.apply_chat_template(
            chat, add_generation_prompt=gen, return_dict=False
        )
    arr = ours.apply_chat_template(chat, add_generation_prompt=True, return_tensors="np")
    want = ref.apply_chat_template(chat, add_generation_prompt=True, return_tensors="np", return_dict=False)
    assert arr.shape == want.shape and arr.shape[0] == 1 and (arr == want).all()
    enc = ours.apply_chat_template(chat, return_dict=True)
    assert enc.input_ids == ours.apply_chat_template(chat) and enc.attention_mask == [1] * len(enc.input_ids)
    # a batch of conversations, padded on the left
    batch = [chat, chat[:1]]
    got = ours.apply_chat_template(batch, padding=True, return_dict=True)
    assert _plain(got) == _plain(ref.apply_chat_template(batch, padding=True))


def test_a_transformers_tokenizer_works_where_tensorweave_takes_one(chat_pair, bert_pair):
    _, ref = chat_pair
    llama = {
        "model_type": "llama",
        "vocab_size": len(BPE_TOKENS),
        "hidden_size": 8,
        "intermediate_size": 16,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "max_position_embeddings": 64,
        "eos_token_id": 2,
        "bos_token_id": 1,
    }
    rng = np.random.default_rng(0)

    def params(d):
        cfg = config_from_dict(d)
        return cfg, {
            k: rng.standard_normal(s).astype(np.float32)
            for k, s in PARAMETER_SHAPES[d["model_type"]](cfg).items()
        }

    cfg, p = params(llama)
    with_ref, with_ours = Model(cfg, p, tokenizer=ref), Model(cfg, p, tokenizer=_bpe())
    chat = [{"role": "user", "content": "abc"}]
    kw = {"max_new_tokens": 2, "backend": "numpy", "trace": False}
    assert with_ref.chat(chat, **kw) == with_ours.chat(chat, **kw)
    bert = {
        "model_type": "bert",
        "vocab_size": len(WORDS),
        "hidden_size": 8,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "intermediate_size": 16,
        "max_position_embeddings": 16,
    }
    cfg, p = params(bert)
    ours_tok, ref_tok = bert_pair["right"]
    a = Model(cfg, p, head="default", tokenizer=ref_tok).embed(TEXTS, backend="numpy")
    b = Model(cfg, p, head="default", tokenizer=ours_tok).embed(TEXTS, backend="numpy")
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


def test_tokenizer_config_json_fields_are_type_checked(tmp_path):
    from tensorweave.errors import ModelLoadError

    _wordpiece().save(str(tmp_path / "tokenizer.json"))
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"pad_token": 0}))
    with pytest.raises(ModelLoadError, match="field `pad_token` must be a string"):
        Tokenizer.from_file(str(tmp_path / "tokenizer.json"))
    (tmp_path / "tokenizer_config.json").write_bytes(b"\xff\xfe")
    with pytest.raises(ModelLoadError, match="tokenizer_config.json is not valid JSON text"):
        Tokenizer.from_file(str(tmp_path / "tokenizer.json"))
    os.remove(tmp_path / "tokenizer_config.json")
    assert Tokenizer.from_file(str(tmp_path / "tokenizer.json")).pad_token is None
