"""The IR's size limits (spec/ir.md, "Limits") are one IRError before any framework work, the same
on every backend; and the IR JSON reader only ever raises its documented error on mutated files."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tensorweave as tw
from tensorweave.ir import TensorSpec, array_namespace
from tensorweave.ir import graph as irgraph
from tensorweave.ir.control import cond
from tensorweave.ir.serialize import dumps, loads


def _huge(x):
    xp = array_namespace(x)
    return x + xp.sum(xp.full((10**6, 10**6), 1.0, dtype=xp.float32))


def _nested(depth: int):
    def fn(x):
        def level(v, d):
            if d == 0:
                return v + 1.0
            return cond(v[0] > 0, lambda a: level(a, d - 1), lambda a: a * 2.0, v)

        return level(x, depth)

    return fn


def test_huge_static_value_is_refused_before_lowering(backend):
    graph = tw.trace(_huge, TensorSpec((2,), "float32"))
    with pytest.raises(tw.IRError, match="elements, more than the limit"):
        tw.lower(graph, backend=backend)


def test_deep_nesting_is_refused_at_trace_and_at_load(monkeypatch):
    monkeypatch.setattr(irgraph, "MAX_NESTING", 4)
    ok = tw.trace(_nested(3), TensorSpec((2,), "float32"))
    text = dumps(ok)
    with pytest.raises(tw.IRError, match="nest deeper than 4"):
        tw.trace(_nested(6), TensorSpec((2,), "float32"))
    monkeypatch.setattr(irgraph, "MAX_NESTING", 2)
    import tensorweave.ir.serialize as ser

    monkeypatch.setattr(ser, "MAX_NESTING", 2)
    with pytest.raises(tw.IRError, match="nest deeper than 2"):
        loads(text)


def test_deep_nesting_is_refused_before_a_framework_sees_it(monkeypatch, framework_backend):
    graph = tw.trace(_nested(3), TensorSpec((2,), "float32"))
    monkeypatch.setattr(irgraph, "MAX_NESTING", 2)
    with pytest.raises(tw.IRError, match="nest deeper than 2"):
        tw.lower(graph, backend=framework_backend)


def test_limits_allow_ordinary_graphs(backend):
    graph = tw.trace(_nested(3), TensorSpec((2,), "float32"))
    out = tw.lower(graph, backend=backend)(np.array([1.0, 2.0], np.float32))
    np.testing.assert_allclose(out, [2.0, 3.0])  # every level takes the true branch: x + 1


# ------------------------------------------------------------------ fuzz: mutated IR JSON
_VALID = dumps(tw.trace(_nested(2), TensorSpec(("n",), "float32")))


def _mutate(text: str, data: st.DataObject) -> str:
    kind = data.draw(st.sampled_from(["flip", "truncate", "json"]))
    if kind == "flip":
        i = data.draw(st.integers(0, len(text) - 1))
        return text[:i] + data.draw(st.characters(codec="utf-8")) + text[i + 1 :]
    if kind == "truncate":
        return text[: data.draw(st.integers(0, len(text) - 1))]
    doc = json.loads(text)
    path = [doc]
    node = doc
    for _ in range(data.draw(st.integers(1, 6))):  # walk down to a random container and change one entry
        if isinstance(node, dict) and node:
            key = data.draw(st.sampled_from(sorted(node)))
            path.append(key)
            if not isinstance(node[key], (dict, list)):
                break
            node = node[key]
        elif isinstance(node, list) and node:
            idx = data.draw(st.integers(0, len(node) - 1))
            if not isinstance(node[idx], (dict, list)):
                node[idx] = data.draw(st.one_of(st.integers(-(2**40), 2**40), st.text(max_size=3), st.none()))
                return json.dumps(doc)
            node = node[idx]
        else:
            break
    if isinstance(node, dict) and node:
        key = data.draw(st.sampled_from(sorted(node)))
        node[key] = data.draw(
            st.one_of(
                st.integers(-(2**40), 2**40),
                st.text(max_size=3),
                st.none(),
                st.lists(st.integers(), max_size=3),
            )
        )
    return json.dumps(doc)


@settings(max_examples=150, derandomize=True, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_ir_json_gives_only_the_documented_error(data):
    text = _mutate(_VALID, data)
    try:
        g = loads(text)
    except tw.IRError as e:
        assert "\n" not in str(e).strip(), "one line"
        return
    g.check()  # anything accepted is a well-formed graph
