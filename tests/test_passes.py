"""Passes: shape inference, DCE, constant folding, CSE, optimize — node counts asserted and
numpy results unchanged (bit for bit: folding uses the same reference the interpreter runs)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorweave as tw
import tensorweave.ir.namespace as xp
from tensorweave.backends.numpy import run_graph
from tensorweave.ir import IRError, TensorSpec, passes
from tensorweave.ir.graph import Graph, Node, Value
from tensorweave.ir.trace import constant

X = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)


def results(g: Graph, *args) -> list:
    out = tw.lower(g, "numpy")(*args)
    return list(out) if isinstance(out, (tuple, list)) else [out]


def assert_same_results(g1: Graph, g2: Graph, *args) -> None:
    a, b = results(g1, *args), results(g2, *args)
    assert len(a) == len(b)
    for u, v in zip(a, b):
        assert u.dtype == v.dtype and u.shape == v.shape
        np.testing.assert_array_equal(u.astype(np.float64), v.astype(np.float64))


def ops(g: Graph, recursive: bool = False) -> list[str]:
    return [n.op for n in (g.walk() if recursive else g.nodes)]


def spec(shape, dtype="float32") -> TensorSpec:
    return TensorSpec(shape, dtype)


def node(op: str, ins: list[Value], out_specs: list[TensorSpec], **attrs) -> Node:
    return Node(op, ins, [Value(s) for s in out_specs], attrs)


def loop_graph() -> Graph:
    """A while_loop whose body has dead code, a duplicated expression, and foldable constants."""

    def f(x):
        def body(v):
            dead = xp.exp(v) * 7.0  # noqa: F841 - dead inside the body
            k = xp.asarray(np.arange(3, dtype=np.float32)) * 0.5  # foldable inside the body
            return xp.tanh(v) + xp.tanh(v) + k + (xp.abs(v) + 1.0)  # >= |v| - 1: the sum grows, the loop ends

        return xp.while_loop(lambda v: xp.sum(v) < 20.0, body, x)

    return tw.trace(f, spec(("b", 3)))


# ------------------------------------------------------------------------------ infer_shapes


def test_infer_shapes_returns_a_checked_copy_with_normalised_attributes():
    x = Value(spec(("b", 3)), "x")
    s = node("sum", [x], [spec(("b",))], axis=(1,))  # keepdims left to its default
    g = Graph("g", [x], s.outputs, [s])
    g2 = passes.infer_shapes(g)
    assert g2 is not g and g2.nodes[0] is not g.nodes[0]
    assert g2.nodes[0].attrs == {"axis": (1,), "keepdims": False}
    assert g.nodes[0].attrs == {"axis": (1,)}  # the input is untouched
    np.testing.assert_array_equal(run_graph(g2, [X], {"b": 2})[0], X.sum(axis=1))


@pytest.mark.parametrize(
    "label,build,message",
    [
        (
            "recorded type",
            lambda x: node("exp", [x], [spec(("b", 4))]),
            r"graph 'g' node 0 \(exp\): output 0 is f32\[b,4\] but the op gives f32\[b,3\]",
        ),
        (
            "recorded dtype",
            lambda x: node("argmax", [x], [spec(("b",), "int32")], axis=1),
            r"node 0 \(argmax\): output 0 is i32\[b\] but the op gives i64\[b\]",
        ),
        (
            "output count",
            lambda x: node("exp", [x], [spec(("b", 3)), spec(("b", 3))]),
            "has 2 outputs, the op defines 1",
        ),
        (
            "attribute kind",
            lambda x: node("softmax", [x], [spec(("b", 3))], axis="last"),
            r"node 0 \(softmax\): op softmax: attribute 'axis' must be of kind axis",
        ),
        ("unknown op", lambda x: node("frobnicate", [x], [spec(("b", 3))]), "unknown op 'frobnicate'"),
    ],
)
def test_infer_shapes_reports_the_node(label, build, message):
    x = Value(spec(("b", 3)), "x")
    n = build(x)
    with pytest.raises(IRError, match=message):
        passes.infer_shapes(Graph("g", [x], n.outputs[:1], [n]))


def test_infer_shapes_checks_subgraphs_and_constants():
    g = loop_graph()
    body = next(n for n in g.nodes if n.op == "while_loop").subgraphs["body"]
    bad_body = Graph(body.name, body.inputs, body.outputs, list(body.nodes), dict(body.constants))
    k = next(i for i, n in enumerate(bad_body.nodes) if n.op == "tanh")
    wrong = Value(spec(("b", 5)))
    bad_body.nodes.insert(k, Node("tanh", bad_body.nodes[k].inputs, [wrong], {}))  # an extra, mistyped tanh
    bad_body.nodes.insert(k + 1, Node("exp", [wrong], [Value(spec(("b", 5)))], {}))  # keep `wrong` used
    loop = next(n for n in g.nodes if n.op == "while_loop")
    bad = Graph(
        g.name,
        g.inputs,
        g.outputs,
        [
            Node(
                n.op,
                n.inputs,
                n.outputs,
                n.attrs,
                {**n.subgraphs, "body": bad_body} if n is loop else n.subgraphs,
            )
            for n in g.nodes
        ],
        dict(g.constants),
    )
    with pytest.raises(
        IRError, match=r"node \d+ \(while_loop\) subgraph 'body' node \d+ \(tanh\): output 0 is f32\[b,5\]"
    ):
        passes.infer_shapes(bad)
    c = Value(spec((2,)))
    with pytest.raises(IRError, match=r"constant %\d+ holds shape \[3\] but is typed f32\[2\]"):
        passes.infer_shapes(Graph("g", [], [c], [], {c: np.zeros(3, np.float32)}))
    with pytest.raises(IRError, match=r"constant %\d+ holds float64 but is typed f32\[2\]"):
        passes.infer_shapes(Graph("g", [], [c], [], {c: np.zeros(2)}))


# ------------------------------------------------------------------------------ DCE


def test_dead_code_elimination_drops_unused_nodes_and_constants():
    def f(x):
        unused = xp.exp(x) * 3.0  # noqa: F841 - dead
        return x + 1.0

    g = tw.trace(f, spec(("b", 3)))
    text = str(g)
    assert ops(g) == ["exp", "multiply", "add"] and len(g.constants) == 2
    d = passes.dead_code_elimination(g)
    assert ops(d) == ["add"] and len(d.constants) == 1
    assert str(g) == text  # the input graph is untouched
    assert_same_results(g, d, X)


def test_dead_code_elimination_cleans_subgraphs_and_drops_unused_loops():
    g = loop_graph()
    d = passes.dead_code_elimination(g)
    body = lambda h: next(n for n in h.nodes if n.op == "while_loop").subgraphs["body"]  # noqa: E731
    assert ops(body(g)).count("exp") == 1 and ops(body(d)).count("exp") == 0
    assert g.num_nodes() - d.num_nodes() == 2  # exp and the multiply by 7 inside the body
    assert ops(d).count("while_loop") == 1  # used: kept
    assert_same_results(g, d, X)

    def f(x):
        xp.while_loop(lambda v: xp.sum(v) < 5.0, lambda v: v + 1.0, x)  # result unused
        return x * 2.0

    h = tw.trace(f, spec((2, 3)))
    assert "while_loop" in ops(h) and passes.dead_code_elimination(h).num_nodes() == 1
    assert_same_results(h, passes.dead_code_elimination(h), X)


# ------------------------------------------------------------------------------ constant folding


def test_constant_folding_evaluates_constant_expressions():
    def f(x):
        c = xp.exp(xp.asarray(np.array([0.0, 1.0, 2.0], np.float32))) * 2.0
        return x + c

    g = tw.trace(f, spec(("b", 3)))
    folded = passes.constant_folding(g)
    assert ops(g) == ["exp", "multiply", "add"] and ops(folded) == ["add"]
    assert len(folded.constants) == 1
    assert_same_results(g, folded, X)


def test_constant_folding_respects_max_size_and_symbolic_shapes():
    def f(x):
        big = xp.asarray(np.arange(40, dtype=np.float32).reshape(8, 5)) * 3.0  # 40 elements
        small = xp.asarray(np.arange(3, dtype=np.float32)) + 1.0  # 3 elements
        ones = xp.ones((x.shape[0], 3), dtype=xp.float32) * 2.0  # symbolic: never folded
        return xp.sum(big) + x + small + ones

    g = tw.trace(f, spec(("b", 3)))
    limited = passes.constant_folding(g, max_size=10)
    assert ops(g).count("multiply") == 2 and ops(limited).count("multiply") == 2  # big (and ones) stay
    assert "full" in ops(limited)
    unlimited = passes.constant_folding(g)
    assert ops(unlimited).count("multiply") == 1 and "sum" not in ops(unlimited)
    for h in (limited, unlimited):
        assert_same_results(g, h, X)
    with pytest.raises(IRError, match="max_size must be >= 0"):
        passes.constant_folding(g, max_size=-1)


def test_constant_folding_uses_nullary_nodes_multi_outputs_and_low_precision():
    def f(x):
        r = xp.arange(6, dtype=xp.float32) * 0.25  # arange folded away with its consumer
        v, i = xp.top_k(xp.asarray(np.array([3.0, 1.0, 3.0, 2.0], np.float32)), 2)  # two outputs
        h = xp.asarray(np.array([1.1, 2.2], np.float16)) * xp.asarray(np.array([3.3, 4.4], np.float16))
        b = xp.exp(constant(np.array([0.3, 1.7], np.float32).astype(tw.DType.bfloat16.to_numpy())))
        return x[:, :1] + r, v, i, h, b, xp.zeros((2,), dtype=xp.float32)

    g = tw.trace(f, spec((2, 3)))
    folded = passes.constant_folding(g)
    assert "arange" in ops(g) and "arange" not in ops(folded)
    assert "top_k" not in ops(folded) and "exp" not in ops(folded)
    assert ops(folded).count("full") == 1  # an unconsumed nullary node stays a node
    assert_same_results(g, folded, X)


def test_constant_folding_inside_subgraphs():
    g = loop_graph()
    folded = passes.constant_folding(g)
    assert folded.num_nodes() < g.num_nodes()
    body = next(n for n in folded.nodes if n.op == "while_loop").subgraphs["body"]
    assert "arange" not in ops(body) and len([n for n in body.nodes if n.op == "multiply"]) == 0
    assert_same_results(g, folded, X)


# ------------------------------------------------------------------------------ CSE


def test_cse_merges_identical_nodes_not_different_attributes():
    def f(x):
        a = xp.tanh(x) + xp.tanh(x)
        s = xp.softmax(x, axis=0) + xp.softmax(x, axis=1) + xp.softmax(x, axis=1)
        v1, i1 = xp.top_k(x, 2)
        v2, i2 = xp.top_k(x, 2)
        return a, s, v1 + v2, i1 + i2

    g = tw.trace(f, spec((2, 3)))
    c = passes.common_subexpression_elimination(g)
    assert ops(g).count("tanh") == 2 and ops(c).count("tanh") == 1
    assert ops(g).count("softmax") == 3 and ops(c).count("softmax") == 2  # axis 0 and axis 1 differ
    assert ops(g).count("top_k") == 2 and ops(c).count("top_k") == 1
    assert_same_results(g, c, X)


def test_cse_merges_equal_unnamed_constants_only():
    x = Value(spec((3,)), "x")
    k1, k2, k3 = Value(spec((3,))), Value(spec((3,))), Value(spec((3,)))
    named = Value(spec((3,)), "weight")
    arr = np.array([1.0, -0.0, 2.0], np.float32)
    consts = {k1: arr, k2: arr.copy(), k3: np.array([1.0, 0.0, 2.0], np.float32), named: arr.copy()}
    m = [node("multiply", [x, k], [spec((3,))]) for k in (k1, k2, k3, named)]
    s1 = node("add", [m[0].outputs[0], m[1].outputs[0]], [spec((3,))])
    s2 = node("add", [m[2].outputs[0], m[3].outputs[0]], [spec((3,))])
    g = Graph("g", [x], [s1.outputs[0], s2.outputs[0]], m + [s1, s2], consts)
    c = passes.common_subexpression_elimination(g)
    # k2 == k1 (same bytes); k3 differs (0.0 vs -0.0); the named constant keeps its identity
    assert len(c.constants) == 3 and ops(c).count("multiply") == 3
    xv = np.array([1.0, -np.inf, 3.0], np.float32)
    assert_same_results(g, c, xv)


def test_cse_merges_identical_loops_and_stays_inside_subgraphs():
    def f(x):
        def body(v):
            return v + 1.0 + xp.exp(v) * 0.0 + xp.exp(v) * 0.0  # duplicate inside the body; +1: terminates

        a = xp.while_loop(lambda v: xp.sum(v) < 5.0, body, x)
        b = xp.while_loop(lambda v: xp.sum(v) < 5.0, body, x)  # identical loop
        c = xp.while_loop(lambda v: xp.sum(v) < 6.0, body, x)  # different cond: kept
        return a + b + c + xp.exp(x)  # exp(x) outside must not merge with exp(v) inside

    g = tw.trace(f, spec((2, 3)))
    c = passes.common_subexpression_elimination(g)
    assert ops(g).count("while_loop") == 3 and ops(c).count("while_loop") == 2
    for loop in (n for n in c.nodes if n.op == "while_loop"):
        assert ops(loop.subgraphs["body"]).count("exp") == 1
    assert ops(c).count("exp") == 1  # the outer one
    assert_same_results(g, c, X)


# ------------------------------------------------------------------------------ optimize


def test_optimize_pipeline_and_input_untouched():
    def f(x):
        k = xp.asarray(np.ones(3, np.float32)) * 2.0
        dead = xp.log(x)  # noqa: F841
        return xp.softmax(x * k, axis=-1) + xp.softmax(x * k, axis=-1)

    g = tw.trace(f, spec(("b", 3)))
    text = str(g)
    o = passes.optimize(g)
    assert ops(o) == ["multiply", "softmax", "add"] and len(o.constants) == 1
    assert str(g) == text
    passes.infer_shapes(o)
    assert_same_results(g, o, X)
    lo = passes.optimize(loop_graph())
    assert lo.num_nodes() < loop_graph().num_nodes()
    assert_same_results(loop_graph(), lo, X)


UNARY = ["exp", "tanh", "negative", "abs"]
BINARY = ["add", "multiply", "subtract", "maximum"]


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(UNARY + BINARY), st.integers(0, 50), st.integers(0, 50)),
        min_size=1,
        max_size=12,
    ),
    st.integers(0, 50),
)
def test_optimize_preserves_results_of_random_programs(steps, out_pick):
    """Random straight-line programs over x and constants (with repeats, so CSE and folding
    fire): optimize never changes the numpy results and never adds nodes."""

    def f(x):
        pool = [x, xp.asarray(np.array([0.5, -1.0, 2.0], np.float32)), xp.asarray(np.float32(3.0))]
        for op, a, b in steps:
            u, v = pool[a % len(pool)], pool[b % len(pool)]
            pool.append(getattr(xp, op)(u) if op in UNARY else getattr(xp, op)(u, v))
        return pool[-1], pool[out_pick % len(pool)] + x

    with np.errstate(all="ignore"):
        g = tw.trace(f, spec(("b", 3)))
        o = passes.optimize(g)
        assert o.num_nodes() <= g.num_nodes()
        passes.infer_shapes(o)
        assert_same_results(g, o, X)


# ------------------------------------------------------------------------------ merge_linears
RNG = np.random.default_rng(1)
W1, W2, W4 = (RNG.standard_normal(s).astype(np.float32) for s in [(4, 3), (2, 3), (5, 4)])
W3 = RNG.standard_normal((3, 6)).astype(np.float32)


def linears(x):
    w1, w2, w3, w4 = (xp.asarray(w) for w in (W1, W2, W3, W4))
    a = xp.matmul(x, xp.permute_dims(w1, (1, 0)))  # x @ W1^T
    b = xp.matmul(x, xp.permute_dims(w2, (1, 0)))  # x @ W2^T: merged with a
    c = xp.matmul(x, w3)  # x @ W3 (an [in, out] weight: its own group)
    d = xp.matmul(a, xp.permute_dims(w4, (1, 0)))  # another input: untouched
    return a, b, c, d


def test_merge_linears_concatenates_sibling_weights_and_slices_the_outputs():
    g = tw.trace(linears, spec(("b", 3)))
    m = passes.dead_code_elimination(passes.merge_linears(g))
    passes.infer_shapes(m)
    assert ops(m).count("matmul") == 3 and ops(m).count("slice") == 2
    merged = [a for a in m.constants.values() if a.shape == (6, 3)]
    assert len(merged) == 1 and np.array_equal(merged[0], np.concatenate([W1, W2]))
    for u, v in zip(results(g, X), results(m, X)):
        np.testing.assert_allclose(u, v, rtol=1e-6, atol=1e-6)
    # the same sources give the same concatenated array (a prompt graph and its loop body share it)
    again = passes.merge_linears(g)
    assert any(a is merged[0] for a in again.constants.values())


def test_merge_linears_inside_a_loop_body_captures_the_merged_weight():
    def f(x):
        w1, w2 = xp.asarray(W1), xp.asarray(W2)

        def body(s):
            i, v = s
            a = xp.matmul(v, xp.permute_dims(w1, (1, 0)))[..., :3]
            b = xp.matmul(v, xp.permute_dims(w2, (1, 0)))
            return i + 1, xp.tanh(a) + xp.sum(b, axis=-1, keepdims=True) + 1.0

        return xp.while_loop(lambda s: s[0] < 4, body, (0, x))[1]  # four steps

    g = tw.trace(f, spec((2, 3)))
    m = passes.optimize(g)
    passes.infer_shapes(m)
    loop = next(n for n in m.nodes if n.op == "while_loop")
    body = loop.subgraphs["body"]
    assert ops(body).count("matmul") == 1 and len(loop.inputs) == len(body.inputs) == len(
        loop.subgraphs["cond"].inputs
    )
    assert any(a.shape == (6, 3) for a in m.constants.values())
    np.testing.assert_allclose(results(g, X)[0], results(m, X)[0], rtol=1e-6, atol=1e-6)
    for backend in ("onnx", "torch"):
        if backend in tw.backends.available():  # both are installed in CI
            np.testing.assert_allclose(
                np.asarray(tw.lower(m, backend)(X)), results(g, X)[0], rtol=1e-5, atol=1e-5
            )


def test_merge_linears_merges_quantized_blocks_of_one_layout():
    from tensorweave.frontends.models.weights import BlockQuantized

    def blocks(rows: int) -> BlockQuantized:
        packed = RNG.integers(0, 2**32, (rows, 2, 4), dtype=np.uint64).astype(np.uint32)  # 2 blocks of 32
        return BlockQuantized(packed, RNG.random((rows, 2), np.float32), RNG.random((rows, 2), np.float32), 4)

    qa, qb = blocks(3), blocks(5)

    def f(x):
        return tuple(
            xp.quantized_matmul(
                x, *(xp.asarray(a) for a in (q.packed, q.scales, q.offsets)), bits=4, zero_point=8
            )
            for q in (qa, qb)
        )

    x = RNG.standard_normal((2, 64)).astype(np.float32)
    g = tw.trace(f, spec((2, 64)))
    m = passes.optimize(g)
    assert ops(m).count("quantized_matmul") == 1 and ops(m).count("slice") == 2
    for u, v in zip(results(g, x), results(m, x)):
        np.testing.assert_allclose(u, v, rtol=1e-6, atol=1e-6)


def test_packed_siblings_merge_as_a_view_of_their_buffer():
    from tensorweave.frontends.models.weights import BlockQuantized, bind_params, linear, pack_siblings

    rng = np.random.default_rng(3)
    p = "model.layers.0.self_attn"
    params = {
        f"{p}.{n}.weight": rng.standard_normal((r, 3)).astype(np.float32)
        for n, r in [("q_proj", 4), ("k_proj", 2), ("v_proj", 2)]
    }
    before = {k: v.copy() for k, v in params.items()}
    codes = rng.integers(0, 2**32, (5, 1, 4), dtype=np.uint64).astype(np.uint32)
    params["model.layers.0.mlp.gate_proj.weight"] = BlockQuantized(
        codes, rng.random((5, 1), np.float32), rng.random((5, 1), np.float32), 4
    )
    params["model.layers.0.mlp.up_proj.weight"] = BlockQuantized(
        codes[:2] ^ 7, rng.random((2, 1), np.float32), rng.random((2, 1), np.float32), 4
    )
    pack_siblings(params)
    for k, v in before.items():
        np.testing.assert_array_equal(params[k], v)  # values unchanged, laid out back to back
    q, k, v = (params[f"{p}.{n}_proj.weight"] for n in "qkv")
    assert q.base is k.base is v.base and q.base is not None

    def f(x, y):  # y feeds the quantized pair (32 columns: one block)
        ps = bind_params(params)
        return tuple(linear(xp, y if "mlp" in n else x, ps[n]) for n in params)

    g = tw.trace(f, spec((2, 3)), spec((2, 32)))
    m = passes.merge_linears(g)
    merged = next(a for a in m.constants.values() if a.shape == (8, 3))
    assert np.shares_memory(merged, q) and np.array_equal(merged, np.concatenate([q, k, v]))
    # the quantized pair merges too, each of its three arrays a view of its packed buffer
    gate = params["model.layers.0.mlp.gate_proj.weight"]
    blocks = [a for a in m.constants.values() if a.shape[0] == 7]
    assert len(blocks) == 3
    assert all(np.shares_memory(a, b) for a, b in zip(blocks, (gate.packed, gate.scales, gate.offsets)))
    x, y = rng.standard_normal((2, 3)).astype(np.float32), rng.standard_normal((2, 32)).astype(np.float32)
    for u, w in zip(results(g, x, y), results(m, x, y)):
        np.testing.assert_allclose(u, w, rtol=1e-6, atol=1e-6)
    # arrays that only look adjacent (another buffer) are copied, not viewed
    a, b = np.ones((2, 3), np.float32), np.zeros((1, 3), np.float32)
    out = passes._concatenated([a, b], 0)
    assert not np.shares_memory(out, a) and out.shape == (3, 3)
