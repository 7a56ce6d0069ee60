"""Issue 3's acceptance program: a fused decode loop with a static KV cache, top-k filtering and
seeded categorical sampling gives identical tokens on all five backends."""

from __future__ import annotations

import numpy as np

import tensorweave as tw
import tensorweave.ir.namespace as xp
from tensorweave.ir import TensorSpec, random

from conftest import require_backend

LAYERS, HEADS, HEAD_DIM, VOCAB, MAX_LEN, PROMPT = 2, 2, 4, 11, 12, 3
D = HEADS * HEAD_DIM
rng = np.random.default_rng(42)
EMB = (rng.standard_normal((VOCAB, D)) * 0.5).astype(np.float32)
WQKV = (rng.standard_normal((LAYERS, 3, D, D)) * 0.3).astype(np.float32)
WOUT = (rng.standard_normal((D, VOCAB)) * 0.5).astype(np.float32)


def decode(tokens, key):
    """tokens: [batch, max_len] int64 with the prompt in the first PROMPT positions."""
    b = tokens.shape[0]
    cache = xp.zeros((LAYERS, 2, b, HEADS, MAX_LEN, HEAD_DIM), dtype=xp.float32)

    def body(state):
        pos, toks, cache = state
        last = xp.take_along_axis(toks, xp.broadcast_to(xp.reshape(pos - 1, (1, 1)), (b, 1)), axis=1)[:, 0]
        h = xp.take(xp.asarray(EMB), last, axis=0)  # [b, D]
        for layer in range(LAYERS):
            w = xp.asarray(WQKV[layer])
            q, k, v = (xp.reshape(h @ w[i], (b, HEADS, 1, HEAD_DIM)) for i in range(3))
            kv = xp.stack([k, v], axis=0)[None]  # [1, 2, b, heads, 1, head_dim]
            cache = xp.dynamic_update_slice(cache, kv, [layer, 0, 0, 0, pos - 1, 0])
            keys, values = cache[layer, 0], cache[layer, 1]
            att = xp.einsum("bhqd,bhkd->bhqk", q, keys) / float(np.sqrt(HEAD_DIM))
            valid = xp.arange(MAX_LEN)[None, None, None, :] < pos
            att = xp.softmax(xp.where(valid, att, -1e9), axis=-1)
            h = h + xp.reshape(xp.einsum("bhqk,bhkd->bhqd", att, values), (b, D))
        logits = h @ xp.asarray(WOUT)
        kth = xp.top_k(logits, 4)[0][:, -1:]
        logits = xp.where(logits < kth, -xp.inf, logits)
        nxt = random.categorical(random.fold_in(key, pos), logits)
        toks = xp.where(xp.arange(MAX_LEN)[None, :] == pos, nxt[:, None], toks)
        return pos + 1, toks, cache

    _, toks, cache = xp.while_loop(
        lambda s: s[0] < MAX_LEN, body, (xp.asarray(PROMPT, dtype=xp.int64), tokens, cache)
    )
    return toks, cache


def test_identical_tokens_on_every_backend():
    graph = tw.trace(
        decode, TensorSpec(("batch", MAX_LEN), "int64", "tokens"), TensorSpec((2,), "uint32", "key")
    )
    tokens = np.zeros((3, MAX_LEN), np.int64)
    tokens[:, :PROMPT] = [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
    ref_tokens, ref_cache = tw.lower(graph, "numpy")(tokens, random.key(1234))
    assert (ref_tokens[:, PROMPT:] != 0).any()
    for name in ("torch", "tensorflow", "jax", "onnx"):
        require_backend(name)
        toks, cache = tw.lower(graph, backend=name)(tokens, random.key(1234))
        np.testing.assert_array_equal(toks, ref_tokens, err_msg=name)
        np.testing.assert_allclose(cache, ref_cache, rtol=1e-5, atol=1e-5, err_msg=name)
    other, _ = tw.lower(graph, "numpy")(tokens, random.key(4321))
    assert not np.array_equal(other, ref_tokens)  # the seed matters
