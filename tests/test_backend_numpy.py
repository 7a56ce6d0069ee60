"""The numpy backend (spec/backends-numpy.md): the reference interpreter. Its rule table has one
rule(site) per registry op, each calling the op's reference; control flow runs the closed
subgraphs; ``load`` reads the IR's own JSON (+ safetensors) back as a program."""

from __future__ import annotations

import inspect
import os

import numpy as np
import pytest

import tensorweave.ir.namespace as xp
from tensorweave.backends import numpy as np_backend
from tensorweave.backends.base import Rules, Site
from tensorweave.backends.numpy import load, lower, run_graph
from tensorweave.ir import IRError, TensorSpec, random, trace
from tensorweave.ir.ops import OPS
from tensorweave.ir.serialize import dumps, save
from tensorweave.ir.trace import constant


def test_rule_table_covers_the_registry_with_one_argument_rules():
    rules = np_backend.LOWERINGS
    assert isinstance(rules, Rules) and rules.backend == np_backend.NAME == "numpy"
    assert set(rules) == set(OPS)
    for op, rule in rules.items():
        params = inspect.signature(rule, follow_wrapped=False).parameters.values()
        assert [p.name for p in params if p.default is p.empty] == ["site"], op
        assert rule.__wrapped__ is OPS[op].reference, op  # the registry's reference, nothing local


def test_a_rule_applies_the_reference_to_the_site():
    g = trace(lambda x: xp.clip(x, min=-1.0, max=2.0), TensorSpec((4,), "float32", "x"))
    (node,) = g.nodes
    x = np.array([-3.0, 0.5, 1.0, 9.0], np.float32)
    out = np_backend.LOWERINGS[node.op](Site(node, [x], dict(node.attrs)))
    np.testing.assert_array_equal(out, [-1.0, 0.5, 1.0, 2.0])


def _loop_and_branch(x, n):
    def body(state):
        i, acc = state
        acc = xp.cond(i % 2 == 0, lambda a: a + x, lambda a: a * 1.5, acc)
        return i + 1, acc

    steps, acc = xp.while_loop(lambda s: s[0] < n, body, (0, xp.zeros_like(x)))
    return steps, acc, xp.cond(xp.sum(x) > 0.0, lambda a: a * 2.0, lambda a: -a, acc)


def test_while_loop_and_cond():
    g = trace(_loop_and_branch, TensorSpec(("b",), "float32", "x"), TensorSpec((), "int64", "n"))
    prog = lower(g)
    for x, n in ((np.array([1.0, 2.0], np.float32), 4), (np.array([-1.0, 0.5, -2.0], np.float32), 3)):
        acc, i = np.zeros_like(x), 0
        while i < n:  # the same loop in plain Python
            acc = acc + x if i % 2 == 0 else acc * np.float32(1.5)
            i += 1
        steps, got, picked = prog(x, np.int64(n))
        assert steps == n and steps.dtype == np.int64
        np.testing.assert_allclose(got, acc, rtol=1e-6)
        np.testing.assert_allclose(picked, acc * 2.0 if x.sum() > 0 else -acc, rtol=1e-6)
        assert got.dtype == picked.dtype == np.float32
    zero = prog(np.array([1.0], np.float32), np.int64(0))  # the body never runs
    assert zero[0] == 0 and zero[1].tolist() == [0.0]
    # run_graph is the interpreter itself: symbol values are given explicitly
    assert run_graph(g, [np.ones(2, np.float32), np.asarray(1, np.int64)], {"b": 2})[0] == 1


WEIGHT = np.linspace(-1.0, 1.0, 6).reshape(3, 2).astype(np.float32)


def _model(x, key):
    h = xp.tanh(x @ constant(WEIGHT, name="proj.weight"))
    return h, random.random_bits(key, (2,))


def test_ir_json_round_trip_through_load(tmp_path):
    g = trace(_model, TensorSpec(("batch", 3), "float32", "x"), TensorSpec((2,), "uint32", "key"))
    prog = lower(g)
    x = np.arange(6, dtype=np.float32).reshape(2, 3) / 5
    want = prog(x, random.key(4))

    path = prog.export(str(tmp_path / "model.json"))  # the IR's JSON + its safetensors side file
    assert path == str(tmp_path / "model.json")
    assert sorted(os.listdir(tmp_path)) == ["model.json", "model.json.safetensors"]
    for source in (path, save(g, str(tmp_path / "again.json"))):
        loaded = load(source)
        assert isinstance(loaded, np_backend.NumpyProgram)
        assert loaded.input_names == prog.input_names and loaded.output_specs == prog.output_specs
        for a, b in zip(loaded(x, random.key(4)), want):
            np.testing.assert_array_equal(a, b)
            assert a.dtype == b.dtype
    (tmp_path / "inline.json").write_text(dumps(g))  # constants inline, no side file
    np.testing.assert_array_equal(load(str(tmp_path / "inline.json"))(x, random.key(4))[0], want[0])

    with pytest.raises(IRError, match="cannot read graph file"):
        load(str(tmp_path / "missing.json"))
    with pytest.raises(IRError, match="no options"):
        lower(g, compile=True)
