"""Serialisation: round trips, malformed files rejected with clear messages, mutation fuzzing."""
from __future__ import annotations

import copy
import json
import os
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tensorweave as tw
import tensorweave.ir.namespace as xp
from tensorweave.ir import IRError, TensorSpec, serialize
from tensorweave.ir import safetensors_io
from tensorweave.ir.trace import constant


def rich_graph():
    def f(x, n):
        def body(i, acc):
            return xp.cond(i % 2 == 0, lambda a: a + x, lambda a: a * 2.0, acc)
        t = xp.fori_loop(0, n, body, xp.zeros_like(x))
        v, i = xp.top_k(xp.softmax(t, axis=-1), 2)
        w = constant(np.arange(12, dtype=np.float32).reshape(3, 4), name="dense.weight")
        half = constant(np.array([1.5, -2.0], np.float16))
        bf = constant(np.array([0.5, 2.0], np.float32).astype(tw.DType.bfloat16.to_numpy()))
        return {"t": t, "v": v, "i": i, "proj": t @ w, "flat": xp.reshape(t, (-1,)), "nan": xp.full((2,), float("nan")),
                "half": half * 2.0, "bf": bf + bf, "clip": xp.clip(x, -1.0, None)}
    return tw.trace(f, TensorSpec(("batch", 3), "float32", "x"), TensorSpec((), "int64", "n"))


GRAPH = rich_graph()


@pytest.fixture
def saved(tmp_path):
    path = serialize.save(GRAPH, str(tmp_path / "g.json"))
    return path


def run(g, b=2):
    x = np.random.default_rng(0).standard_normal((b, 3)).astype(np.float32)
    return tw.lower(g, "numpy")(x, np.array(3))


def test_round_trip_identical_text_and_results(saved):
    g2 = serialize.load(saved)
    assert str(g2) == str(GRAPH)
    for a, b in zip(run(GRAPH), run(g2)):
        np.testing.assert_array_equal(a.astype(np.float64), b.astype(np.float64))
    assert [v.name for v in g2.constants if v.name] == ["dense.weight"]
    assert os.path.exists(saved + ".safetensors")
    assert not [f for f in os.listdir(os.path.dirname(saved)) if f.endswith(".tmp")]


def test_side_file_is_standard_safetensors(saved):
    from safetensors.numpy import load_file
    ours, _ = safetensors_io.load_file(saved + ".safetensors")
    theirs = load_file(saved + ".safetensors")
    assert set(ours) == set(theirs)
    for k in ours:
        if ours[k].dtype.name != "bfloat16":
            np.testing.assert_array_equal(ours[k], theirs[k])


def test_numpy_program_export_is_the_ir_file(tmp_path):
    path = tw.lower(GRAPH, "numpy").export(str(tmp_path / "prog.json"))
    assert str(serialize.load(path)) == str(GRAPH)


def mutate_json(path, fn):
    doc = json.loads(open(path).read())
    fn(doc)
    open(path, "w").write(json.dumps(doc))


def first_node(doc, op):
    return next(n for n in doc["graph"]["nodes"] if n["op"] == op)


MALFORMED = [
    ("bad format name", lambda d: d.update(format="onnx"), "not a tensorweave IR file"),
    ("future version", lambda d: d.update(version=99), "version 99 is not supported"),
    ("missing graph key", lambda d: d["graph"].pop("nodes"), "missing key 'nodes'"),
    ("unknown op", lambda d: first_node(d, "softmax").update(op="softmaxx"), "unknown op 'softmaxx'"),
    ("wrong arity", lambda d: first_node(d, "softmax")["inputs"].append(first_node(d, "softmax")["inputs"][0]),
     r"node \d+ \(softmax\): op softmax: takes 1 input\(s\), got 2"),
    ("unknown attribute", lambda d: first_node(d, "top_k")["attrs"].update(largest=True), "unknown attribute"),
    ("ill-typed attribute", lambda d: first_node(d, "top_k")["attrs"].update(k="two"), "attribute 'k' must be of kind int"),
    ("recorded type mismatch", lambda d: first_node(d, "top_k")["outputs"][1].update(dtype="int32"),
     r"output 1 is recorded as i32\[batch,2\] but the op gives i64\[batch,2\]"),
    ("dangling value id", lambda d: first_node(d, "softmax")["inputs"].__setitem__(0, 9999),
     "uses value id 9999, which is not defined before it"),
    ("duplicate definition", lambda d: first_node(d, "softmax")["outputs"][0].update(id=d["graph"]["inputs"][0]["id"]),
     "is defined twice"),
    ("bad symbolic dim", lambda d: d["graph"]["inputs"][0].update(shape=["batch / 2", 3]), "only symbols, integers"),
    ("unknown dtype", lambda d: d["graph"]["inputs"][0].update(dtype="complex64"), "unknown dtype 'complex64'"),
    ("dangling output", lambda d: d["graph"]["outputs"].__setitem__(0, 12345), "output 0 refers to value id 12345"),
    ("constant missing from side file", lambda d: d["graph"]["constants"][0].update(key="zz"),
     "tensor 'zz' is missing from the constants file"),
    ("constant shape mismatch", lambda d: next(c for c in d["graph"]["constants"] if c["name"] == "dense.weight")
     .update(shape=[4, 3]), r"holds shape \[3, 4\]"),
    ("bad subgraph", lambda d: first_node(d, "while_loop")["subgraphs"].pop("body"), "needs subgraphs"),
]


@pytest.mark.parametrize("label,mutation,message", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_graph_files_are_rejected_clearly(saved, label, mutation, message):
    mutate_json(saved, mutation)
    with pytest.raises(IRError, match=message):
        serialize.load(saved)


def test_non_json_and_nan_literals_rejected(saved):
    open(saved, "w").write("{not json")
    with pytest.raises(IRError, match="not valid JSON"):
        serialize.load(saved)
    open(saved, "w").write('{"format": "tensorweave-ir", "version": NaN}')
    with pytest.raises(IRError, match="non-standard JSON constant NaN"):
        serialize.load(saved)


@pytest.mark.parametrize("label,corrupt,message", [
    ("truncated", lambda b: b[:len(b) // 2], "truncated or corrupt"),
    ("header length beyond file", lambda b: struct.pack("<Q", 10 ** 7) + b[8:], "runs past the end of the file"),
    ("tiny file", lambda b: b[:5], "truncated file"),
    ("garbage header", lambda b: b[:8] + b"\xff" * (struct.unpack("<Q", b[:8])[0]) + b[8 + struct.unpack("<Q", b[:8])[0]:],
     "header is not valid JSON"),
])
def test_corrupt_side_files_are_rejected(saved, label, corrupt, message):
    side = saved + ".safetensors"
    data = open(side, "rb").read()
    open(side, "wb").write(corrupt(data))
    with pytest.raises(IRError, match=message):
        serialize.load(saved)


def test_overlapping_offsets_rejected(tmp_path):
    header = {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
              "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}
    head = json.dumps(header).encode()
    blob = struct.pack("<Q", len(head)) + head + b"\0" * 12
    with pytest.raises(IRError, match="overlap"):
        safetensors_io.decode(blob)


def _leaves(obj, path=()):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _leaves(v, path + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _leaves(v, path + (i,))
    else:
        yield path, obj


BASE_DOC, BASE_TENSORS = serialize.to_dict(GRAPH)
PATHS = [p for p, _ in _leaves(BASE_DOC)]


def _set(doc, path, value):
    for k in path[:-1]:
        doc = doc[k]
    doc[path[-1]] = value


def _delete(doc, path):
    for k in path[:-1]:
        doc = doc[k]
    if isinstance(doc, dict):
        doc.pop(path[-1])
    else:
        doc.pop(path[-1])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(PATHS), st.sampled_from(["delete", "int", "neg", "str", "none", "list", "float", "op"]),
       st.integers(-3, 10 ** 6))
def test_mutated_files_either_load_valid_or_raise_irerror(path, how, number):
    """Any single mutation of a valid document: load raises IRError or returns a valid graph."""
    doc = copy.deepcopy(BASE_DOC)
    if how == "delete":
        _delete(doc, path)
    else:
        _set(doc, path, {"int": number, "neg": -number, "str": "batch*" + str(number), "none": None, "list": [number],
                         "float": number + 0.5, "op": "matmul"}[how])
    try:
        g = serialize.from_dict(doc, dict(BASE_TENSORS))
    except IRError:
        return
    tw.ir.passes.infer_shapes(g)  # a graph that loads is fully valid


@settings(max_examples=60, deadline=None)
@given(st.binary(min_size=0, max_size=64), st.integers(0, 200))
def test_random_side_file_bytes_never_crash(junk, cut):
    blob = safetensors_io.encode(BASE_TENSORS)
    try:
        safetensors_io.decode(blob[:cut] + junk)
    except IRError:
        pass
