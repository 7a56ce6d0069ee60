"""Passes: shape inference, DCE, constant folding, CSE — node counts asserted, results unchanged."""
from __future__ import annotations

import numpy as np
import pytest

import tensorweave as tw
import tensorweave.ir.namespace as xp
from tensorweave.ir import IRError, TensorSpec, passes
from tensorweave.ir.graph import Value
from tensorweave.ir.types import TensorSpec as Spec

X = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)


def same_results(g1, g2, *args):
    a = tw.lower(g1, "numpy")(*args)
    b = tw.lower(g2, "numpy")(*args)
    a, b = (a if isinstance(a, tuple) else (a,)), (b if isinstance(b, tuple) else (b,))
    for u, v in zip(a, b):
        np.testing.assert_allclose(u, v, rtol=1e-6)


def test_dead_code_elimination_drops_unused_nodes_and_constants():
    def f(x):
        unused = xp.exp(x) * 3.0  # noqa: F841 - dead
        return x + 1.0
    g = tw.trace(f, TensorSpec(("b", 3), "float32"))
    assert [n.op for n in g.nodes] == ["exp", "multiply", "add"]
    d = passes.dead_code_elimination(g)
    assert [n.op for n in d.nodes] == ["add"] and len(d.constants) == 1
    assert len(g.nodes) == 3  # the input graph is untouched
    same_results(g, d, X)


def test_constant_folding_evaluates_constant_subgraphs():
    def f(x):
        c = xp.exp(xp.asarray(np.array([0.0, 1.0, 2.0], np.float32))) * 2.0
        return x + c
    g = tw.trace(f, TensorSpec(("b", 3), "float32"))
    folded = passes.constant_folding(g)
    assert [n.op for n in folded.nodes] == ["add"]
    assert len(folded.constants) == 1
    same_results(g, folded, X)


def test_cse_merges_identical_nodes_but_not_control_flow():
    def f(x):
        a = xp.tanh(x) + xp.tanh(x)
        loop = xp.while_loop(lambda v: xp.sum(v) < 5.0, lambda v: v + 1.0, x)
        return a, loop
    g = tw.trace(f, TensorSpec((2, 3), "float32"))
    assert sum(n.op == "tanh" for n in g.nodes) == 2
    c = passes.common_subexpression_elimination(g)
    assert sum(n.op == "tanh" for n in c.nodes) == 1
    assert sum(n.op == "while_loop" for n in c.nodes) == 1
    same_results(g, c, X)


def test_optimize_and_infer_shapes():
    def f(x):
        k = xp.asarray(np.ones(3, np.float32)) * 2.0
        return xp.softmax(x * k, axis=-1) + xp.softmax(x * k, axis=-1)
    g = tw.trace(f, TensorSpec(("b", 3), "float32"))
    o = passes.optimize(g)
    assert o.num_nodes() < g.num_nodes()
    assert [n.op for n in o.nodes] == ["multiply", "softmax", "add"]
    passes.infer_shapes(o)
    same_results(g, o, X)
    # a recorded type that the rules disagree with is reported
    bad = passes.dead_code_elimination(g)
    bad.nodes[-1].outputs[0].spec = Spec(("b", 4), "float32")
    with pytest.raises(IRError, match=r"output 0 is f32\[b,4\] but the op gives f32\[b,3\]"):
        passes.infer_shapes(bad)
