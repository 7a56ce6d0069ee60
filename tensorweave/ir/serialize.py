"""Versioned JSON serialisation of graphs, constants in a safetensors side file (spec/ir-serialization.md).

``save(graph, path)`` writes ``path`` (JSON) and ``path + ".safetensors"`` (constants), each to a
temporary file then renamed. ``load(path)`` validates everything — format and version, every
field's type, op names, arity, attributes (by their registry kind), value ids (defined once,
before use), recorded types against re-inferred ones, constants against the side file — and
raises one :class:`IRError` naming the node. Nothing is evaluated or unpickled.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from typing import Any

import numpy as np

from . import safetensors_io
from .graph import Graph, Node, Value
from .ops import OPS, check_attrs, infer_node
from .types import DType, IRError, Shape, SymDim, TensorSpec, as_dim

FORMAT = "tensorweave-ir"
VERSION = 1


# ---------------------------------------------------------------------------- encoding

def _enc_float(v: float) -> Any:
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return v


def _enc_dim(d: Any) -> Any:
    return d if isinstance(d, int) else str(d)


def _enc_attr(kind: str, v: Any) -> Any:
    if v is None:
        return None
    if kind == "float":
        return _enc_float(v)
    if kind == "dtype":
        return v.value
    if kind in ("axes", "ints"):
        return list(v)
    if kind == "dim":
        return _enc_dim(v)
    if kind == "dims":
        return [_enc_dim(d) for d in v]
    if kind in ("scalar", "opt_scalar"):
        if isinstance(v, bool):
            return {"bool": v}
        if isinstance(v, int):
            return {"int": v}
        return {"float": _enc_float(v)}
    return v


def _enc_spec(spec: TensorSpec) -> dict:
    return {"shape": [_enc_dim(d) for d in spec.shape], "dtype": spec.dtype.value}


def to_dict(graph: Graph) -> tuple[dict, dict[str, np.ndarray]]:
    """(JSON-ready dict, constants keyed by their side-file name)."""
    ids: dict[Value, int] = {}
    tensors: dict[str, np.ndarray] = {}

    def vid(v: Value) -> int:
        if v not in ids:
            ids[v] = len(ids)
        return ids[v]

    def enc_graph(g: Graph) -> dict:
        consts = []
        for v, arr in g.constants.items():
            key = f"c{len(tensors)}"
            tensors[key] = np.asarray(arr)
            consts.append({"id": vid(v), "name": v.name, "key": key, **_enc_spec(v.spec)})
        nodes = []
        for n in g.nodes:
            opdef = OPS[n.op]
            nodes.append({
                "op": n.op,
                "inputs": [vid(v) for v in n.inputs],
                "outputs": [{"id": vid(v), **_enc_spec(v.spec)} for v in n.outputs],
                "attrs": {k: _enc_attr(opdef.attrs[k].kind, val) for k, val in n.attrs.items()},
                "subgraphs": {k: enc_graph(sg) for k, sg in n.subgraphs.items()},
            })
        return {"name": g.name,
                "inputs": [{"id": vid(v), "name": v.name, **_enc_spec(v.spec)} for v in g.inputs],
                "constants": consts, "nodes": nodes, "outputs": [vid(v) for v in g.outputs],
                "output_names": list(g.output_names)}

    return {"format": FORMAT, "version": VERSION, "graph": enc_graph(graph)}, tensors


def _atomic_write(path: str, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def save(graph: Graph, path: str) -> str:
    """Write the graph to ``path`` (JSON) and its constants to ``path + '.safetensors'``."""
    graph.check()
    path = os.path.abspath(os.fspath(path))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    doc, tensors = to_dict(graph)
    safetensors_io.save_file(tensors, path + ".safetensors", {"format": FORMAT, "version": str(VERSION)})
    _atomic_write(path, json.dumps(doc, indent=1, allow_nan=False).encode())
    return path


# ---------------------------------------------------------------------------- decoding

class _Ctx:
    def __init__(self, tensors: dict[str, np.ndarray]):
        self.tensors = tensors
        self.values: dict[int, Value] = {}
        self.used_keys: set = set()


def _need(cond: bool, msg: str) -> None:
    if not cond:
        raise IRError(msg)


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _dec_float(x: Any, where: str) -> float:
    if isinstance(x, str) and x in ("nan", "inf", "-inf"):
        return float(x)
    _need((isinstance(x, (int, float))) and not isinstance(x, bool), f"{where}: expected a number, got {x!r}")
    return float(x)


def _dec_dim(x: Any, where: str) -> Any:
    if _is_int(x):
        _need(x >= 0, f"{where}: negative dimension {x}")
        return x
    _need(isinstance(x, str), f"{where}: a dimension must be an int or a symbol string, got {x!r}")
    return as_dim(x)


def _dec_attr(kind: str, x: Any, where: str) -> Any:
    if x is None:
        return None
    if kind == "float":
        return _dec_float(x, where)
    if kind == "dtype":
        _need(isinstance(x, str) and x in DType.__members__, f"{where}: unknown dtype {x!r}")
        return DType(x)
    if kind in ("axes", "ints"):
        _need(isinstance(x, list) and all(_is_int(a) for a in x), f"{where}: expected a list of ints, got {x!r}")
        return tuple(x)
    if kind == "dim":
        return _dec_dim(x, where)
    if kind == "dims":
        _need(isinstance(x, list), f"{where}: expected a list of dims, got {x!r}")
        return tuple(_dec_dim(d, where) for d in x)
    if kind in ("scalar", "opt_scalar"):
        _need(isinstance(x, dict) and len(x) == 1, f"{where}: a scalar must be {{'int'|'float'|'bool': value}}")
        (tag, val), = x.items()
        if tag == "bool":
            _need(isinstance(val, bool), f"{where}: bad bool {val!r}")
            return val
        if tag == "int":
            _need(_is_int(val), f"{where}: bad int {val!r}")
            return val
        _need(tag == "float", f"{where}: unknown scalar tag {tag!r}")
        return _dec_float(val, where)
    return x


def _dec_spec(d: Any, where: str) -> TensorSpec:
    _need(isinstance(d, dict), f"{where}: expected an object")
    _need(isinstance(d.get("shape"), list), f"{where}: missing or bad 'shape'")
    _need(isinstance(d.get("dtype"), str) and d["dtype"] in DType.__members__,
          f"{where}: unknown dtype {d.get('dtype')!r}")
    return TensorSpec(tuple(_dec_dim(x, f"{where} shape") for x in d["shape"]), DType(d["dtype"]))


def _define(ctx: _Ctx, i: Any, v: Value, where: str) -> None:
    _need(_is_int(i), f"{where}: value id must be an int, got {i!r}")
    _need(i not in ctx.values, f"{where}: value id {i} is defined twice")
    ctx.values[i] = v


def _dec_graph(d: Any, ctx: _Ctx, where: str) -> Graph:
    _need(isinstance(d, dict), f"{where}: a graph must be an object")
    for key in ("name", "inputs", "constants", "nodes", "outputs", "output_names"):
        _need(key in d, f"{where}: missing key {key!r}")
    _need(isinstance(d["name"], str), f"{where}: 'name' must be a string")
    where = f"{where} {d['name']!r}"
    for key in ("inputs", "constants", "nodes", "outputs", "output_names"):
        _need(isinstance(d[key], list), f"{where}: {key!r} must be a list")
    local: set = set()
    inputs = []
    for k, e in enumerate(d["inputs"]):
        w = f"{where} input {k}"
        spec = _dec_spec(e, w)
        name = e.get("name")
        _need(name is None or isinstance(name, str), f"{w}: name must be a string")
        v = Value(spec, name)
        _define(ctx, e.get("id"), v, w)
        local.add(e["id"])
        inputs.append(v)
    constants = {}
    for k, e in enumerate(d["constants"]):
        w = f"{where} constant {k}"
        spec = _dec_spec(e, w)
        key = e.get("key")
        _need(isinstance(key, str) and key in ctx.tensors, f"{w}: tensor {key!r} is missing from the constants file")
        arr = ctx.tensors[key]
        _need(tuple(arr.shape) == tuple(spec.shape), f"{w}: the constants file holds shape {list(arr.shape)} for "
                                                     f"{key!r}, the graph says {spec.shape}")
        got = DType.bfloat16 if arr.dtype.name == "bfloat16" else DType(arr.dtype.name)
        _need(got == spec.dtype, f"{w}: the constants file holds {got} for {key!r}, the graph says {spec.dtype}")
        ctx.used_keys.add(key)
        v = Value(spec, e.get("name") if isinstance(e.get("name"), str) else None)
        _define(ctx, e.get("id"), v, w)
        local.add(e["id"])
        constants[v] = arr
    nodes = []
    for k, e in enumerate(d["nodes"]):
        w = f"{where} node {k}"
        _need(isinstance(e, dict), f"{w}: a node must be an object")
        op = e.get("op")
        _need(isinstance(op, str), f"{w}: missing op name")
        _need(op in OPS, f"{w}: unknown op {op!r}")
        w = f"{w} ({op})"
        opdef = OPS[op]
        for key in ("inputs", "outputs", "attrs", "subgraphs"):
            _need(key in e, f"{w}: missing key {key!r}")
        _need(isinstance(e["inputs"], list) and isinstance(e["outputs"], list), f"{w}: inputs/outputs must be lists")
        _need(isinstance(e["attrs"], dict) and isinstance(e["subgraphs"], dict), f"{w}: attrs/subgraphs must be objects")
        ins = []
        for j, i in enumerate(e["inputs"]):
            _need(_is_int(i), f"{w}: input {j} must be a value id")
            _need(i in local, f"{w}: input {j} uses value id {i}, which is not defined before it in this graph")
            ins.append(ctx.values[i])
        unknown = set(e["attrs"]) - set(opdef.attrs)
        _need(not unknown, f"{w}: unknown attribute(s) {sorted(unknown)}")
        attrs = {key: _dec_attr(opdef.attrs[key].kind, val, f"{w} attribute {key!r}") for key, val in e["attrs"].items()}
        attrs = check_attrs(opdef, attrs)
        _need(set(e["subgraphs"]) == set(opdef.subgraphs), f"{w}: needs subgraphs {sorted(opdef.subgraphs)}")
        subs = {key: _dec_graph(sg, ctx, f"{w} subgraph {key!r}:") for key, sg in e["subgraphs"].items()}
        try:
            specs = infer_node(opdef, [v.spec for v in ins], attrs, subs or None)
        except IRError as exc:
            raise IRError(f"{w}: {exc}") from None
        _need(len(specs) == len(e["outputs"]), f"{w}: records {len(e['outputs'])} outputs, the op defines {len(specs)}")
        outs = []
        for j, (oe, spec) in enumerate(zip(e["outputs"], specs)):
            recorded = _dec_spec(oe, f"{w} output {j}")
            _need(tuple(recorded.shape) == tuple(spec.shape) and recorded.dtype == spec.dtype,
                  f"{w}: output {j} is recorded as {recorded} but the op gives {spec}")
            v = Value(spec)
            _define(ctx, oe.get("id"), v, f"{w} output {j}")
            local.add(oe["id"])
            outs.append(v)
        nodes.append(Node(op, ins, outs, attrs, subs))
    outputs = []
    for j, i in enumerate(d["outputs"]):
        _need(_is_int(i) and i in local, f"{where}: output {j} refers to value id {i!r}, which this graph does not define")
        outputs.append(ctx.values[i])
    names = d["output_names"]
    _need(all(isinstance(n, str) for n in names) and len(names) == len(outputs),
          f"{where}: output_names must be {len(outputs)} strings")
    g = Graph(d["name"], inputs, outputs, nodes, constants, list(names))
    g.check()
    return g


def from_dict(doc: Any, tensors: dict[str, np.ndarray], where: str = "graph file") -> Graph:
    _need(isinstance(doc, dict), f"{where}: the top level must be a JSON object")
    _need(doc.get("format") == FORMAT, f"{where}: not a tensorweave IR file (format {doc.get('format')!r}, "
                                        f"expected {FORMAT!r})")
    version = doc.get("version")
    _need(_is_int(version), f"{where}: missing or bad version {version!r}")
    _need(version == VERSION, f"{where}: version {version} is not supported (this tensorweave reads version "
                              f"{VERSION}); re-export the graph with a matching tensorweave")
    ctx = _Ctx(tensors)
    g = _dec_graph(doc.get("graph"), ctx, where + ":")
    extra = set(tensors) - ctx.used_keys
    _need(not extra, f"{where}: the constants file has tensors no graph uses: {sorted(extra)[:5]}")
    return g


def load(path: str) -> Graph:
    """Load and fully validate a graph written by :func:`save`."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise IRError(f"cannot read graph file {path}: {exc.strerror}") from None
    def reject_constant(c: str) -> None:
        raise IRError(f"{path}: non-standard JSON constant {c} (floats are encoded as 'nan'/'inf' strings)")

    try:
        doc = json.loads(raw.decode("utf-8"), parse_constant=reject_constant)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise IRError(f"{path}: not valid JSON ({exc})") from None
    tensors, _ = safetensors_io.load_file(path + ".safetensors")
    return from_dict(doc, tensors, path)
