"""Tracing Python functions (operators, indexing, promotion, loops, conditionals, symbolic shapes)."""

from __future__ import annotations

import numpy as np
import pytest

import tensorweave as tw
import tensorweave.ir.namespace as xp
from tensorweave.backends.numpy import lower
from tensorweave.ir import DType, IRError, TensorSpec, array_namespace, trace


def run(fn, *arrays, specs=None):
    specs = specs or [TensorSpec(a.shape, a.dtype) for a in arrays]
    return lower(trace(fn, *specs))(*arrays)


def test_frontend_style_code_runs_traced_and_eager():
    def step(logits):
        ns = array_namespace(logits)
        p = ns.exp(logits - ns.max(logits, axis=-1, keepdims=True))
        p = p / ns.sum(p, axis=-1, keepdims=True)
        return ns.where(p > 0.2, p, ns.zeros_like(p))

    x = np.array([[1.0, 2.0, 0.5], [0.0, 0.0, 3.0]], np.float32)
    np.testing.assert_allclose(run(step, x), step(x), rtol=1e-6)
    g = trace(step, TensorSpec(("batch", 3), "float32"))
    assert [n.op for n in g.nodes][:2] == ["max", "subtract"]


def test_operators_and_promotion():
    def f(a, b):
        return {
            "add": a + 1,
            "rsub": 2.5 - a,
            "div": b / 2,
            "mixed": a * b,
            "pow": a**2,
            "cmp": (a > 1) & (b < 3),
            "neg": -a,
            "inv": ~(b > 1),
            "floordiv": b // 2,
            "mod": b % 3,
        }

    a = np.array([1.0, 2.0], np.float32)
    b = np.array([1, 4], np.int64)
    out = run(f, a, b)
    assert out[0].dtype == np.float32 and out[0].tolist() == [2.0, 3.0]
    assert out[1].tolist() == [1.5, 0.5]
    assert out[2].dtype == np.float32 and out[2].tolist() == [0.5, 2.0]  # int / int -> float32
    assert out[3].dtype == np.float32 and out[3].tolist() == [1.0, 8.0]  # int promoted to the float
    assert out[5].tolist() == [False, False]
    assert out[8].tolist() == [0, 2] and out[9].tolist() == [1, 1]


def test_dtype_promotion_table():
    def f(a, b):
        return a + b

    g = trace(f, TensorSpec((2,), "int32"), TensorSpec((2,), "uint32"))
    assert g.outputs[0].dtype is DType.int64
    g = trace(f, TensorSpec((2,), "float16"), TensorSpec((2,), "bfloat16"))
    assert g.outputs[0].dtype is DType.float32


def test_indexing_matches_numpy():
    x = np.arange(24, dtype=np.int64).reshape(2, 3, 4)
    idx = np.array([2, 0], np.int64)
    cases = [
        lambda a: a[0],
        lambda a: a[:, -1],
        lambda a: a[..., 1:3],
        lambda a: a[None, :, ::2],
        lambda a: a[:, ::-1],
        lambda a: a[1, 2, 3],
        lambda a: a[:, :, -3:-1],
        lambda a: a[..., None],
        lambda a: a[:, 1:100],
        lambda a: a[0, ::-2],
    ]
    for c in cases:
        np.testing.assert_array_equal(run(c, x), c(x))
    np.testing.assert_array_equal(run(lambda a, i: a[:, i], x, idx), x[:, idx])
    np.testing.assert_array_equal(run(lambda a, i: a[1, i, 1:], x, idx), x[1, idx, 1:])


def test_indexing_errors_are_clear():
    spec = TensorSpec((2, 3), "float32")
    with pytest.raises(IRError, match="out of bounds"):
        trace(lambda a: a[5], spec)
    with pytest.raises(IRError, match="too many indices"):
        trace(lambda a: a[0, 0, 0], spec)
    with pytest.raises(IRError, match="immutable"):

        def f(a):
            a[0] = 1

        trace(f, spec)
    with pytest.raises(IRError, match="data-dependent Python control flow"):
        trace(lambda a: a if a[0, 0] > 0 else -a, spec)


def test_symbolic_shapes_through_reshape_concat_matmul():
    def f(x, past, w):
        b, s, h = x.shape
        heads = 2
        y = xp.reshape(x, (b, s, heads, h // heads))
        y = xp.permute_dims(y, (0, 2, 1, 3))
        kv = xp.concat([past, y], axis=2)
        out = xp.reshape(xp.permute_dims(kv, (0, 2, 1, 3)), (b, -1, h)) @ w
        return {"kv": kv, "out": out, "flat": xp.reshape(out, (-1,))}

    g = trace(
        f,
        TensorSpec(("batch", "seq", 8), "float32", "x"),
        TensorSpec(("batch", 2, "past", 4), "float32", "past"),
        TensorSpec((8, 5), "float32", "w"),
    )
    kv, out, flat = g.output_specs
    assert str(kv.shape) == "[batch,2,past+seq,4]"
    assert str(out.shape) == "[batch,past+seq,5]"
    assert str(flat.shape) == "[5*batch*past+5*batch*seq]"
    prog = lower(g)
    rng = np.random.default_rng(0)
    for b, s, p in [(1, 3, 0), (2, 1, 5)]:
        x = rng.standard_normal((b, s, 8)).astype(np.float32)
        past = rng.standard_normal((b, 2, p, 4)).astype(np.float32)
        w = rng.standard_normal((8, 5)).astype(np.float32)
        kv_, out_, flat_ = prog(x, past, w)
        y = x.reshape(b, s, 2, 4).transpose(0, 2, 1, 3)
        ref_kv = np.concatenate([past, y], axis=2)
        np.testing.assert_allclose(kv_, ref_kv)
        np.testing.assert_allclose(out_, ref_kv.transpose(0, 2, 1, 3).reshape(b, -1, 8) @ w, rtol=1e-5)
        assert flat_.shape == (b * (p + s) * 5,)


def test_symbol_mismatch_at_call_is_an_error_before_work():
    prog = lower(
        trace(lambda a, b: a + b, TensorSpec(("n",), "float32", "a"), TensorSpec(("n",), "float32", "b"))
    )
    with pytest.raises(IRError, match="input 'b' axis 0 has size 3 but symbol 'n' is already 2"):
        prog(np.zeros(2, np.float32), np.zeros(3, np.float32))
    with pytest.raises(IRError, match="input 'a' has dtype float64, expected float32"):
        prog(np.zeros(2), np.zeros(2, np.float32))
    with pytest.raises(IRError, match="takes 2 input"):
        prog(np.zeros(2, np.float32))


def test_while_loop_fori_loop_and_cond_traced_and_eager():
    def f(x, n):
        def body(i, acc):
            return xp.cond(i % 2 == 0, lambda a: a + x, lambda a: a * 2.0, acc)

        total = xp.fori_loop(0, n, body, xp.zeros_like(x))
        steps, val = xp.while_loop(
            lambda s: s[1] < 100.0, lambda s: (s[0] + 1, s[1] * 3.0), (0, xp.sum(x) + 1.0)
        )
        return total, steps, val

    x = np.array([1.0, 2.0], np.float32)
    n = np.array(5, np.int64)
    total, steps, val = run(f, x, n)
    acc = np.zeros(2, np.float32)
    for i in range(5):
        acc = acc + x if i % 2 == 0 else acc * 2.0
    np.testing.assert_allclose(total, acc)
    s, v = 0, 4.0
    while v < 100:
        s, v = s + 1, v * 3
    assert int(steps) == s and float(val) == v
    g = trace(f, TensorSpec((2,), "float32"), TensorSpec((), "int64"))
    assert any(n.op == "while_loop" for n in g.nodes)
    assert any(n.op == "cond" for n in g.walk())
    # eager numpy path of the same control-flow helpers
    assert tw.ir.fori_loop(0, 3, lambda i, v: v + i, 0) == 3


def test_loop_state_must_keep_shape():
    def f(x):
        return xp.while_loop(lambda v: xp.sum(v) < 10.0, lambda v: xp.concat([v, v]), x)

    with pytest.raises(IRError, match="keep its shape"):
        trace(f, TensorSpec((2,), "float32"))


def test_graph_prints_readably():
    g = trace(lambda x: xp.top_k(xp.softmax(x), 2), TensorSpec(("batch", 5), "float32", "x"))
    text = str(g)
    assert 'graph <lambda>(%0:f32[batch,5] "x")' in text
    assert "= top_k(%1) k=2" in text and "i64[batch,2]" in text


def test_function_wrapper_caches_per_signature():
    calls = []

    def f(x):
        calls.append(1)
        return xp.softmax(x)

    fn = tw.function(f, backend="numpy")
    fn(np.ones((2, 3), np.float32))
    fn(np.zeros((2, 3), np.float32))
    assert len(calls) == 1
    fn(np.ones((4, 3), np.float32))
    assert len(calls) == 2


def test_backend_choice_precedence(monkeypatch):
    from tensorweave.backends import registry

    monkeypatch.setenv("TENSORWEAVE_BACKEND", "numpy")
    assert registry.resolve() == "numpy"
    with tw.use_backend("numpy"):
        assert registry.resolve() == "numpy"
        assert registry.resolve("np") == "numpy"
    with pytest.raises(IRError, match="unknown backend 'mxnet'; choose one of"):
        registry.resolve("mxnet")
    monkeypatch.setattr(registry, "is_installed", lambda n: n == "numpy")
    with pytest.raises(IRError, match=r"pip install 'tensorweave\[jax\]'"):
        registry.get("jax")
