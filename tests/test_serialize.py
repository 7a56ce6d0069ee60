"""Serialisation (spec/ir-serialization.md): round trips, malformed files rejected with clear
messages, cross-checks with the `safetensors` package, mutation fuzzing of valid documents."""

from __future__ import annotations

import base64
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
from tensorweave.ir import IRError, TensorSpec, passes, safetensors_io, serialize
from tensorweave.ir.graph import Graph, Node, Value
from tensorweave.ir.ops import OPS
from tensorweave.ir.trace import constant

from op_cases import all_cases

BF16 = tw.DType.bfloat16.to_numpy()


def rich_graph() -> Graph:
    """Symbolic dims (inputs and a `dims` attribute), while_loop + nested cond, top_k (two
    outputs), a named constant, float16/bfloat16 constants, nan and None attributes."""

    def f(x, n):
        def body(i, acc):
            return xp.cond(i % 2 == 0, lambda a: a + x, lambda a: a * 2.0, acc)

        t = xp.fori_loop(0, n, body, xp.zeros_like(x))
        v, i = xp.top_k(xp.softmax(t, axis=-1), 2)
        w = constant(np.arange(12, dtype=np.float32).reshape(3, 4), name="dense.weight")
        half = constant(np.array([1.5, -2.0], np.float16))
        bf = constant(np.array([0.5, 2.0], np.float32).astype(BF16))
        return {
            "t": t,
            "v": v,
            "i": i,
            "proj": t @ w,
            "flat": xp.reshape(t, (-1,)),
            "nan": xp.full((2,), float("nan")),
            "half": half * 2.0,
            "bf": bf + bf,
            "clip": xp.clip(x, -1.0, None),
        }

    return tw.trace(f, TensorSpec(("batch", 3), "float32", "x"), TensorSpec((), "int64", "n"))


def kinds_graph() -> Graph:
    """One graph using the attribute kinds int, float, bool, str, dtype, axis, axes, ints, dims,
    scalar, opt_scalar (``dim`` is covered by the parity cases' dynamic_slice graphs)."""

    def f(x):
        a = xp.sum(x, axis=(1,), keepdims=True)  # axes, bool
        b = xp.astype(xp.gelu(x, approximate="tanh"), xp.float16)  # str, dtype
        c = xp.rms_norm(x, xp.ones((3,), dtype=xp.float32), eps=1e-6)  # float
        d = xp.argmax(x, axis=-1)  # axis
        e = x[:, ::2]  # ints
        g = xp.broadcast_to(a, (x.shape[0], 3))  # dims (symbolic)
        h = xp.clip(x, min=0.0, max=float("inf"))  # scalar, opt_scalar
        k = xp.top_k(x, 2)[1]  # int
        return a, b, c, d, e, g, h, k

    return tw.trace(f, TensorSpec(("rows", 3), "float32", "x"))


GRAPH = rich_graph()
KINDS = kinds_graph()
X = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)


def run(g: Graph, b: int = 2) -> list:
    x = np.random.default_rng(b).standard_normal((b, 3)).astype(np.float32)
    return list(tw.lower(g, "numpy")(x, np.array(3)))


def assert_same_results(a: list, b: list) -> None:
    assert len(a) == len(b)
    for u, v in zip(a, b):
        assert u.dtype == v.dtype and u.shape == v.shape
        np.testing.assert_array_equal(u.astype(np.float64), v.astype(np.float64))


def assert_same_constants(g1: Graph, g2: Graph) -> None:
    c1 = [c for g in [g1] + [s for n in g1.walk() for s in n.subgraphs.values()] for c in g.constants.items()]
    c2 = [c for g in [g2] + [s for n in g2.walk() for s in n.subgraphs.values()] for c in g.constants.items()]
    assert [(v.name, str(v.spec)) for v, _ in c1] == [(v.name, str(v.spec)) for v, _ in c2]
    for (_, a), (_, b) in zip(c1, c2):
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes()


@pytest.fixture
def saved(tmp_path):
    return serialize.save(GRAPH, str(tmp_path / "g.json"))


# ------------------------------------------------------------------------------ round trips


def test_save_load_round_trip_identical_text_constants_and_results(saved):
    g2 = serialize.load(saved)
    assert str(g2) == str(GRAPH)
    assert_same_constants(GRAPH, g2)
    for b in (1, 4):  # the symbolic batch at two sizes
        assert_same_results(run(GRAPH, b), run(g2, b))
    assert os.path.exists(saved + ".safetensors")
    assert not [f for f in os.listdir(os.path.dirname(saved)) if f.endswith(".tmp")]


def test_document_is_standard_json_with_documented_layout(saved):
    doc = json.loads(open(saved).read())  # no NaN/Infinity literals: a strict parser accepts it
    json.loads(open(saved).read(), parse_constant=lambda c: pytest.fail(f"non-standard literal {c}"))
    assert (doc["format"], doc["version"]) == ("tensorweave-ir", 1)
    assert set(doc["graph"]) == {"name", "inputs", "constants", "nodes", "outputs", "output_names"}
    assert doc["graph"]["inputs"][0]["shape"] == ["batch", 3]
    reshape = next(n for n in doc["graph"]["nodes"] if n["op"] == "reshape")
    assert reshape["attrs"]["shape"] == ["3*batch"]
    full = next(n for n in doc["graph"]["nodes"] if n["op"] == "full" and n["attrs"]["shape"] == [2])
    assert full["attrs"]["fill_value"] == {"float": "nan"}
    clip = next(n for n in doc["graph"]["nodes"] if n["op"] == "clip")
    assert clip["attrs"]["max"] is None
    loop = next(n for n in doc["graph"]["nodes"] if n["op"] == "while_loop")
    assert set(loop["subgraphs"]) == {"cond", "body"}


def test_every_attribute_kind_round_trips():
    g2 = serialize.loads(serialize.dumps(KINDS))
    assert str(g2) == str(KINDS)
    kinds = {OPS[n.op].attrs[k].kind for n in KINDS.walk() for k in n.attrs}
    assert kinds >= {
        "int",
        "float",
        "bool",
        "str",
        "dtype",
        "axis",
        "axes",
        "ints",
        "dims",
        "scalar",
        "opt_scalar",
    }
    for rows in (1, 3):
        x = np.random.default_rng(rows).standard_normal((rows, 3)).astype(np.float32)
        assert_same_results(list(tw.lower(KINDS, "numpy")(x)), list(tw.lower(g2, "numpy")(x)))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the cases feed nan/inf and empty slices on purpose
def test_every_parity_case_round_trips_in_memory():
    """Every op of the registry (the parity-matrix graphs): same text, bit-identical results."""
    seen: set = set()
    for case in all_cases():
        case_id, g, arrays = case.id, case.graph, case.inputs
        if id(g) not in seen:
            seen.add(id(g))
            g2 = serialize.loads(serialize.dumps(g))
            assert str(g2) == str(g), case_id
        ref = tw.lower(g, "numpy")(*arrays)
        got = tw.lower(g2, "numpy")(*arrays)
        ref, got = (list(r) if isinstance(r, (tuple, list)) else [r] for r in (ref, got))
        assert_same_results(ref, got)


def test_dumps_loads_round_trip_and_load_accepts_inline_documents(tmp_path):
    text = serialize.dumps(GRAPH)
    doc = json.loads(text)
    assert set(doc) == {"format", "version", "graph", "inline_constants"}
    g2 = serialize.loads(text)
    assert str(g2) == str(GRAPH)
    assert_same_constants(GRAPH, g2)
    path = tmp_path / "inline.json"
    path.write_text(text)
    g3 = serialize.load(str(path))  # no side file needed
    assert str(g3) == str(GRAPH)
    assert_same_results(run(GRAPH), run(g3))


def test_side_file_is_standard_safetensors_both_ways(saved, tmp_path):
    from safetensors.numpy import load_file, save_file

    ours, meta = safetensors_io.load_file(saved + ".safetensors")
    theirs = load_file(saved + ".safetensors")
    assert meta == {"format": "tensorweave-ir", "version": "1"}
    assert set(ours) == set(theirs) and "dense.weight" in ours  # named constants keep their names
    for k in ours:
        assert ours[k].dtype == theirs[k].dtype and ours[k].shape == theirs[k].shape
        assert ours[k].tobytes() == theirs[k].tobytes()
    # a file written by the safetensors package, every dtype, read by ours
    arrays = {
        "b": np.array([True, False]),
        "i32": np.array([-1, 7], np.int32),
        "i64": np.array([[2**40]], np.int64),
        "u32": np.array([0xFFFFFFFF], np.uint32),
        "f16": np.array([1.5], np.float16),
        "bf16": np.array([0.5, -3.0], np.float32).astype(BF16),
        "f32": np.zeros((2, 0), np.float32),
        "f64": np.array(np.pi),
    }
    save_file(arrays, str(tmp_path / "theirs.safetensors"))
    back, _ = safetensors_io.load_file(str(tmp_path / "theirs.safetensors"))
    for k, a in arrays.items():
        assert back[k].dtype == a.dtype and back[k].shape == a.shape and back[k].tobytes() == a.tobytes(), k


def test_numpy_program_export_writes_the_ir_file(tmp_path):
    path = tw.lower(GRAPH, "numpy").export(str(tmp_path / "sub" / "prog.json"))
    assert path == str(tmp_path / "sub" / "prog.json")
    g2 = serialize.load(path)
    assert str(g2) == str(GRAPH)
    assert_same_results(run(GRAPH), run(g2))


def test_save_validates_before_writing_anything(saved):
    before = (open(saved, "rb").read(), open(saved + ".safetensors", "rb").read())
    bad = passes.dead_code_elimination(GRAPH)
    x = bad.inputs[0]
    wrong = Value(TensorSpec(("batch", 4), "float32"))  # exp keeps the shape: recorded type is wrong
    bad = Graph("bad", [x], [wrong], [Node("exp", [x], [wrong], {})])
    with pytest.raises(
        IRError, match=r"node 0 \(exp\): output 0 is f32\[batch,4\] but the op gives f32\[batch,3\]"
    ):
        serialize.save(bad, saved)
    odd = Value(TensorSpec((2,), "float32"))
    with pytest.raises(IRError, match="constant .* holds complex64"):
        serialize.save(Graph("odd", [], [odd], [], {odd: np.zeros(2, np.complex64)}), saved)
    with pytest.raises(IRError, match="is a directory"):
        serialize.save(GRAPH, os.path.dirname(saved))
    assert (open(saved, "rb").read(), open(saved + ".safetensors", "rb").read()) == before
    assert not [f for f in os.listdir(os.path.dirname(saved)) if f.endswith(".tmp")]


# ------------------------------------------------------------------------------ malformed files


def mutate_json(path, fn):
    doc = json.loads(open(path).read())
    fn(doc)
    open(path, "w").write(json.dumps(doc))


def first_node(doc, op, graph=None):
    return next(n for n in (graph or doc["graph"])["nodes"] if n["op"] == op)


def body_of(doc):
    return first_node(doc, "while_loop")["subgraphs"]["body"]


MALFORMED = [
    ("bad format name", lambda d: d.update(format="onnx"), "not a tensorweave IR file"),
    ("future version", lambda d: d.update(version=99), "version 99 is not supported .* reads version 1"),
    ("version as a string", lambda d: d.update(version="1"), "missing or bad version '1'"),
    ("unknown top-level key", lambda d: d.update(extra=1), r"the document has unknown key\(s\) \['extra'\]"),
    ("missing graph key", lambda d: d["graph"].pop("nodes"), r"a graph is missing key\(s\) \['nodes'\]"),
    (
        "unknown op",
        lambda d: first_node(d, "softmax").update(op="softmaxx"),
        r"node \d+: unknown op 'softmaxx'",
    ),
    (
        "wrong arity",
        lambda d: first_node(d, "softmax")["inputs"].append(first_node(d, "softmax")["inputs"][0]),
        r"node \d+ \(softmax\): op softmax: takes 1 input\(s\), got 2",
    ),
    (
        "unknown attribute",
        lambda d: first_node(d, "top_k")["attrs"].update(largest=True),
        r"node \d+ \(top_k\): unknown attribute\(s\) \['largest'\]",
    ),
    (
        "missing attribute",
        lambda d: first_node(d, "top_k")["attrs"].pop("k"),
        r"node \d+ \(top_k\): op top_k: missing attribute 'k'",
    ),
    (
        "ill-typed attribute",
        lambda d: first_node(d, "top_k")["attrs"].update(k="two"),
        r"node \d+ \(top_k\): op top_k: attribute 'k' must be of kind int",
    ),
    (
        "bad scalar tag",
        lambda d: first_node(d, "clip")["attrs"].update(min={"complex": 1}),
        "unknown scalar tag 'complex'",
    ),
    (
        "unknown node key",
        lambda d: first_node(d, "softmax").update(comment="hi"),
        r"unknown key\(s\) \['comment'\]",
    ),
    (
        "recorded type mismatch",
        lambda d: first_node(d, "top_k")["outputs"][1].update(dtype="int32"),
        r"\(top_k\): output 1 is recorded as i32\[batch,2\] but the op gives i64\[batch,2\]",
    ),
    (
        "recorded shape mismatch",
        lambda d: first_node(d, "softmax")["outputs"][0].update(shape=["batch", 4]),
        r"\(softmax\): output 0 is recorded as f32\[batch,4\] but the op gives f32\[batch,3\]",
    ),
    (
        "dangling value id",
        lambda d: first_node(d, "softmax")["inputs"].__setitem__(0, 9999),
        "input 0 uses value id 9999, which is not defined before it",
    ),
    (
        "duplicate definition",
        lambda d: first_node(d, "softmax")["outputs"][0].update(id=d["graph"]["inputs"][0]["id"]),
        "is defined twice",
    ),
    (
        "subgraph not closed",
        lambda d: first_node(d, "add", body_of(d))["inputs"].__setitem__(1, d["graph"]["inputs"][0]["id"]),
        r"subgraph 'body' graph 'body' node \d+ \(add\): input 1 uses value id 0, which is not defined before it in this graph",
    ),
    (
        "bad symbolic dim",
        lambda d: d["graph"]["inputs"][0].update(shape=["batch / 2", 3]),
        "only symbols, integers",
    ),
    ("negative dim", lambda d: d["graph"]["inputs"][0].update(shape=[-2, 3]), "negative dimension -2"),
    (
        "negative symbolic dim",
        lambda d: d["graph"]["inputs"][0].update(shape=["1 - 3", 3]),
        "dimension '1 - 3' is negative",
    ),
    (
        "unknown dtype",
        lambda d: d["graph"]["inputs"][0].update(dtype="complex64"),
        "unknown dtype 'complex64'",
    ),
    (
        "dangling output",
        lambda d: d["graph"]["outputs"].__setitem__(0, 12345),
        "output 0 refers to value id 12345",
    ),
    ("output names count", lambda d: d["graph"]["output_names"].pop(), "'output_names' must be 9 strings"),
    (
        "constant missing from side file",
        lambda d: d["graph"]["constants"][0].update(key="zz"),
        "tensor 'zz' is missing from the constants file",
    ),
    (
        "constant shape mismatch",
        lambda d: next(c for c in d["graph"]["constants"] if c["name"] == "dense.weight").update(
            shape=[4, 3]
        ),
        r"holds shape \[3, 4\] for 'dense.weight', the graph says \[4, 3\]",
    ),
    (
        "constant dtype mismatch",
        lambda d: next(c for c in d["graph"]["constants"] if c["name"] == "dense.weight").update(
            dtype="float64"
        ),
        "holds float32 for 'dense.weight', the graph says float64",
    ),
    (
        "bad subgraph set",
        lambda d: first_node(d, "while_loop")["subgraphs"].pop("body"),
        r"\(while_loop\): needs subgraphs \['body', 'cond'\]",
    ),
    (
        "subgraph signature",
        lambda d: first_node(d, "while_loop")["subgraphs"]["cond"]["inputs"].pop(),
        r"\(while_loop\): op while_loop: subgraph cond takes 3 inputs, the loop passes 4",
    ),
]


@pytest.mark.parametrize("label,mutation,message", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_graph_files_are_rejected_clearly(saved, label, mutation, message):
    mutate_json(saved, mutation)
    with pytest.raises(IRError, match=message) as info:
        serialize.load(saved)
    assert "\n" not in str(info.value) and str(info.value).startswith(saved)


@pytest.mark.parametrize(
    "label,text,message",
    [
        ("not json", "{not json", "not valid JSON"),
        ("nan literal", '{"format": "tensorweave-ir", "version": NaN}', "non-standard JSON constant NaN"),
        ("top level list", "[1, 2]", "the top level must be a JSON object"),
        ("integer past the digit limit", '{"version": ' + "9" * 5000 + "}", "not valid JSON"),
        ("not utf-8", b"\xff\xfe{}", "not valid JSON"),
    ],
)
def test_unparseable_documents_are_rejected(saved, label, text, message):
    open(saved, "wb").write(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(IRError, match=message):
        serialize.load(saved)


def test_loads_needs_inline_constants_and_valid_base64():
    doc, _ = serialize.to_dict(GRAPH)
    with pytest.raises(IRError, match="has no 'inline_constants'.*use load"):
        serialize.loads(json.dumps(doc))
    doc["inline_constants"] = "***"
    with pytest.raises(IRError, match="'inline_constants' is not valid base64"):
        serialize.loads(json.dumps(doc))


def _header(blob: bytes) -> tuple[dict, bytes]:
    (n,) = struct.unpack("<Q", blob[:8])
    return json.loads(blob[8 : 8 + n]), blob[8 + n :]


def _with_header(header: dict, data: bytes) -> bytes:
    head = json.dumps(header).encode()
    return struct.pack("<Q", len(head)) + head + data


def _bump_offsets(b: bytes) -> bytes:
    h, data = _header(b)
    key = max((k for k in h if k != "__metadata__"), key=lambda k: h[k]["data_offsets"][1])
    h[key]["data_offsets"][1] += 8
    return _with_header(h, data)


SIDE_CORRUPTIONS = [
    ("truncated", lambda b: b[: len(b) // 2], "truncated or corrupt"),
    (
        "header length beyond file",
        lambda b: struct.pack("<Q", 10**7) + b[8:],
        "runs past the end of the file",
    ),
    ("tiny file", lambda b: b[:5], "truncated file"),
    (
        "garbage header",
        lambda b: b[:8] + b"\xff" * struct.unpack("<Q", b[:8])[0] + b[8 + struct.unpack("<Q", b[:8])[0] :],
        "header is not valid JSON",
    ),
    ("trailing bytes", lambda b: b + b"\0" * 4, "4 trailing bytes that belong to no tensor"),
    ("offsets out of range", _bump_offsets, "lie outside the .*-byte data section"),
    (
        "unsupported dtype",
        lambda b: _with_header(
            {k: ({**v, "dtype": "C64"} if k != "__metadata__" else v) for k, v in _header(b)[0].items()},
            _header(b)[1],
        ),
        "unsupported dtype 'C64'",
    ),
    ("missing file", None, "cannot read constants file"),
]


@pytest.mark.parametrize("label,corrupt,message", SIDE_CORRUPTIONS, ids=[c[0] for c in SIDE_CORRUPTIONS])
def test_corrupt_side_files_are_rejected(saved, label, corrupt, message):
    side = saved + ".safetensors"
    if corrupt is None:
        os.remove(side)
    else:
        data = open(side, "rb").read()
        open(side, "wb").write(corrupt(data))
    with pytest.raises(IRError, match=message):
        serialize.load(saved)


def test_side_file_with_an_unused_tensor_is_rejected(saved):
    tensors, meta = safetensors_io.load_file(saved + ".safetensors")
    safetensors_io.save_file({**tensors, "stray": np.zeros(3, np.float32)}, saved + ".safetensors", meta)
    with pytest.raises(IRError, match=r"tensors no graph uses: \['stray'\]"):
        serialize.load(saved)


@pytest.mark.parametrize(
    "label,header,data,message",
    [
        (
            "overlap",
            {
                "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]},
            },
            12,
            "'a' and 'b' overlap",
        ),
        (
            "gap",
            {
                "a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                "b": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]},
            },
            12,
            r"bytes 4\.\.8 .* belong to no tensor",
        ),
        (
            "size vs shape",
            {"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}},
            8,
            "has 8 bytes but shape",
        ),
        (
            "bad bool",
            {"a": {"dtype": "BOOL", "shape": [2], "data_offsets": [0, 2]}},
            b"\x01\x07",
            "bytes other than 0 and 1",
        ),
        ("bad shape", {"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 0]}}, 0, "bad shape"),
        ("metadata not strings", {"__metadata__": {"k": 1}}, 0, "__metadata__ must be an object of strings"),
        (
            "extra field",
            {"a": {"dtype": "F32", "shape": [], "data_offsets": [0, 4], "x": 1}},
            4,
            "needs exactly",
        ),
        ("header not object", [], 0, "header must be a JSON object"),
    ],
)
def test_safetensors_reader_rejects_bad_headers(label, header, data, message):
    blob = _with_header(header, data if isinstance(data, bytes) else b"\0" * data)
    with pytest.raises(IRError, match=message):
        safetensors_io.decode(blob)


# ------------------------------------------------------------------------------ fuzzing


def _nodes(obj, path=()):
    """Every (path, value) in a JSON document, containers included."""
    yield path, obj
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ()
    for k, v in items:
        yield from _nodes(v, path + (k,))


BASES = [serialize.to_dict(g) for g in (GRAPH, KINDS)]
PATHS = [[p for p, _ in _nodes(doc) if p] for doc, _ in BASES]
REPLACEMENTS = [
    0,
    1,
    2,
    -1,
    7,
    -(10**6),
    10**30,
    2.5,
    True,
    False,
    None,
    "",
    "batch",
    "batch*7",
    "x + -",
    "nan",
    "-inf",
    "float64",
    "uint32",
    [],
    [0],
    [-1, 0],
    ["batch", 2],
    {},
    {"int": 3},
    {"float": "nan"},
    {"bool": True},
    {"x": 1},
]


def _parent(doc, path):
    for k in path[:-1]:
        doc = doc[k]
    return doc


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, len(BASES) - 1), st.data(), st.integers(1, 3))
def test_mutated_documents_load_valid_or_raise_irerror(base, data, count):
    """Delete a key/element, replace any part by a value of another type or number, duplicate
    a list element, swap an op name, corrupt the side file: loading raises IRError or returns
    a graph that passes full validation and serialises again — never another exception."""
    doc, tensors = copy.deepcopy(BASES[base][0]), dict(BASES[base][1])
    blob = safetensors_io.encode(tensors)
    for _ in range(count):
        how = data.draw(st.sampled_from(["delete", "replace", "duplicate", "op", "side"]))
        if how == "side":
            cut = data.draw(st.integers(0, len(blob)))
            junk = data.draw(st.binary(max_size=16))
            blob = blob[:cut] + junk + blob[cut + len(junk) :]
            continue
        paths = [p for p, _ in _nodes(doc) if p] if count > 1 else PATHS[base]
        if how == "op":
            paths = [p for p in paths if p[-1] == "op"] or paths
        path = data.draw(st.sampled_from(paths))
        parent = _parent(doc, path)
        if how == "delete":
            parent.pop(path[-1])
        elif how == "duplicate" and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[path[-1]]))
        elif how == "op":
            parent[path[-1]] = data.draw(st.sampled_from(sorted(OPS)))
        else:
            parent[path[-1]] = copy.deepcopy(data.draw(st.sampled_from(REPLACEMENTS)))
    text = json.dumps(dict(doc, inline_constants=base64.b64encode(blob).decode()))
    try:
        g = serialize.loads(text)
    except IRError:
        return
    passes.infer_shapes(g)  # a graph that loads is fully valid ...
    assert str(serialize.loads(serialize.dumps(g))) == str(g)  # ... and round-trips


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=0, max_size=64), st.integers(0, 400))
def test_random_side_file_bytes_never_crash(junk, cut):
    blob = safetensors_io.encode(BASES[0][1])
    try:
        tensors, _ = safetensors_io.decode(blob[:cut] + junk)
    except IRError:
        return
    assert all(isinstance(a, np.ndarray) for a in tensors.values())
