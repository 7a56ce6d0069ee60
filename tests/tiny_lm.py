"""The tiny random causal LMs the generation tests share: a transformers GPT-2 or Llama (vocab 40,
eos 3, pad 2, bos 1; pad is not 0, see test_generate.py) with EOS made likely, and the same
weights as a tensorweave model."""

from __future__ import annotations

VOCAB, EOS, PAD, BOS = 40, 3, 2, 1


def tiny_lm(kind: str, seed: int) -> tuple:
    """``(transformers model, tensorweave model)`` for ``kind`` "gpt2" or "llama"."""
    import torch
    import transformers

    from tensorweave.models import from_transformers

    torch.manual_seed(seed)
    common = dict(vocab_size=VOCAB, eos_token_id=EOS, pad_token_id=PAD, bos_token_id=BOS)
    if kind == "llama":
        cfg = transformers.LlamaConfig(
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=64,
            **common,
        )
        hf = transformers.LlamaForCausalLM(cfg).eval()
    else:
        cfg = transformers.GPT2Config(n_positions=64, n_embd=16, n_layer=2, n_head=4, **common)
        hf = transformers.GPT2LMHeadModel(cfg).eval()
    with torch.no_grad():  # make EOS likely so that rows finish at different steps
        head = hf.lm_head.weight if kind == "llama" else hf.transformer.wte.weight
        head[EOS] *= 3.0
    return hf, from_transformers(hf)
