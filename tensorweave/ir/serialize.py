"""Versioned JSON serialisation of graphs (normative description: spec/ir-serialization.md).

- ``save(graph, path)`` writes ``path`` (JSON) and ``path + ".safetensors"`` (the constants);
  both are written to temporary files in the target directory, then renamed.
- ``dumps(graph)`` / ``loads(text)``: the same JSON document with the constants inline
  (``"inline_constants"``: the base64 of the same safetensors bytes). ``load`` reads such a
  document too (then there is no side file).
- ``load(path)`` / ``loads(text)`` validate everything — format and version, every key and its
  type, op names, arity, attributes (by their registry kind), value ids (defined once, before
  use, within the graph that uses them), recorded types against re-inferred ones, constants
  against the safetensors data — and raise one ``IRError`` naming the graph, node and op.
  Nothing is evaluated or unpickled.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import math
import os
from typing import Any

import numpy as np

from . import safetensors_io
from .graph import MAX_NESTING, Graph, Node, Value
from .ops import OPS, check_attrs, infer_node
from .types import DType, IRError, TensorSpec, as_dim

FORMAT = "tensorweave-ir"
VERSION = 1
SIDE_SUFFIX = ".safetensors"
INLINE = "inline_constants"

_DOC_KEYS = {"format", "version", "graph"}
_GRAPH_KEYS = {"name", "inputs", "constants", "nodes", "outputs", "output_names"}
_INPUT_KEYS = {"id", "name", "shape", "dtype"}
_CONST_KEYS = {"id", "name", "key", "shape", "dtype"}
_NODE_KEYS = {"op", "inputs", "outputs", "attrs", "subgraphs"}
_OUT_KEYS = {"id", "shape", "dtype"}


# ============================================================================ encoding


def _enc_float(v: float) -> Any:
    """JSON has no nan/inf: they are the strings "nan", "inf", "-inf"."""
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return float(v)


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
    return v  # int, axis, bool, str


def _enc_spec(spec: TensorSpec) -> dict:
    return {"shape": [_enc_dim(d) for d in spec.shape], "dtype": spec.dtype.value}


def _constant_keys(graph: Graph) -> dict[Value, str]:
    """Side-file tensor names: a constant's own name when it is unique, else ``const.<n>``."""
    consts = [v for g in _graphs(graph) for v in g.constants]
    names = [v.name for v in consts if v.name]
    unique = {n for n in names if names.count(n) == 1 and n != safetensors_io.METADATA}
    keys: dict[Value, str] = {}
    counter = itertools.count()
    for v in consts:
        if v.name in unique:
            keys[v] = v.name
            continue
        key = f"const.{next(counter)}"
        while key in unique:
            key = f"const.{next(counter)}"
        keys[v] = key
    return keys


def _graphs(g: Graph) -> list[Graph]:
    out = [g]
    for n in g.nodes:
        for sub in n.subgraphs.values():
            out.extend(_graphs(sub))
    return out


def to_dict(graph: Graph) -> tuple[dict, dict[str, np.ndarray]]:
    """(the JSON document as a dict, the constants keyed by their side-file names).

    The graph is fully validated first (:func:`tensorweave.ir.passes.infer_shapes`), so that
    everything written can be read back. Value ids count up in definition order over the whole
    file; a use refers to a definition in the same graph (subgraphs are closed)."""
    from .passes import infer_shapes

    graph = infer_shapes(graph)  # also normalises attributes (defaults filled)
    keys = _constant_keys(graph)
    tensors: dict[str, np.ndarray] = {}
    counter = itertools.count()

    def enc_graph(g: Graph) -> dict:
        ids: dict[Value, int] = {}

        def define(v: Value) -> int:
            ids[v] = next(counter)
            return ids[v]

        inputs = [{"id": define(v), "name": v.name, **_enc_spec(v.spec)} for v in g.inputs]
        consts = []
        for v, arr in g.constants.items():
            tensors[keys[v]] = arr
            consts.append({"id": define(v), "name": v.name, "key": keys[v], **_enc_spec(v.spec)})
        nodes = []
        for n in g.nodes:
            opdef = OPS[n.op]
            entry = {
                "op": n.op,
                "inputs": [ids[v] for v in n.inputs],
                "attrs": {k: _enc_attr(opdef.attrs[k].kind, val) for k, val in n.attrs.items()},
                "subgraphs": {k: enc_graph(sub) for k, sub in n.subgraphs.items()},
            }
            entry["outputs"] = [{"id": define(v), **_enc_spec(v.spec)} for v in n.outputs]
            nodes.append(entry)
        return {
            "name": g.name,
            "inputs": inputs,
            "constants": consts,
            "nodes": nodes,
            "outputs": [ids[v] for v in g.outputs],
            "output_names": list(g.output_names),
        }

    return {"format": FORMAT, "version": VERSION, "graph": enc_graph(graph)}, tensors


def _metadata() -> dict[str, str]:
    return {"format": FORMAT, "version": str(VERSION)}


def _json_bytes(doc: dict) -> bytes:
    return json.dumps(doc, indent=1, allow_nan=False).encode("utf-8")


def save(graph: Graph, path: str) -> str:
    """Write ``graph`` to ``path`` (JSON) and its constants to ``path + ".safetensors"``.

    Everything is validated and encoded before anything is written; each file is written to a
    temporary name in the target directory and renamed (the side file first). Returns the
    absolute path of the JSON file."""
    path = os.path.abspath(os.fspath(path))
    if os.path.isdir(path) or os.path.isdir(path + SIDE_SUFFIX):
        raise IRError(
            f"cannot save a graph to {path}: it is a directory; pass a file path such as graph.json"
        )
    doc, tensors = to_dict(graph)
    side = safetensors_io.encode(tensors, _metadata())
    text = _json_bytes(doc)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    safetensors_io.atomic_write(path + SIDE_SUFFIX, side)
    return safetensors_io.atomic_write(path, text)


def dumps(graph: Graph) -> str:
    """The JSON document with the constants inline (base64 of the side file's bytes)."""
    doc, tensors = to_dict(graph)
    doc[INLINE] = base64.b64encode(safetensors_io.encode(tensors, _metadata())).decode("ascii")
    return _json_bytes(doc).decode("utf-8")


# ============================================================================ decoding


def _need(cond: bool, msg: str) -> None:
    if not cond:
        raise IRError(msg)


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _check_keys(d: Any, keys: set, where: str, what: str) -> None:
    _need(isinstance(d, dict), f"{where}: {what} must be a JSON object, got {type(d).__name__}")
    missing = keys - set(d)
    _need(not missing, f"{where}: {what} is missing key(s) {sorted(missing)}")
    extra = set(d) - keys
    _need(not extra, f"{where}: {what} has unknown key(s) {sorted(extra)}; it takes exactly {sorted(keys)}")


def _dec_float(x: Any, where: str) -> float:
    if isinstance(x, str) and x in ("nan", "inf", "-inf"):
        return float(x)
    _need(
        isinstance(x, (int, float)) and not isinstance(x, bool),
        f"{where}: expected a number or 'nan'/'inf'/'-inf', got {x!r}",
    )
    try:
        return float(x)
    except OverflowError:
        raise IRError(f"{where}: number {x} is too large for a float") from None


def _dec_dim(x: Any, where: str, allow_negative: bool = False) -> Any:
    """A DIM: an int or a symbolic expression string. Shapes need non-negative dims; ``dim`` and
    ``dims`` attributes (e.g. arange's start) may be negative."""
    if _is_int(x):
        _need(allow_negative or x >= 0, f"{where}: negative dimension {x}")
        return x
    _need(
        isinstance(x, str), f"{where}: a dimension must be an int or a symbolic expression string, got {x!r}"
    )
    try:
        d = as_dim(x)
    except IRError as exc:
        raise IRError(f"{where}: {exc}") from None
    except ValueError:  # an integer literal past Python's digit limit
        raise IRError(f"{where}: bad dimension {x[:40]!r}") from None
    _need(allow_negative or not _is_int(d) or d >= 0, f"{where}: dimension {x!r} is negative")
    return d


def _dec_attr(kind: str, x: Any, where: str) -> Any:
    """JSON -> Python by attribute kind; check_attrs then checks the Python value's kind."""
    if x is None:
        return None
    if kind == "float":
        return _dec_float(x, where)
    if kind == "dtype":
        _need(isinstance(x, str) and x in DType.__members__, f"{where}: unknown dtype {x!r}")
        return DType(x)
    if kind in ("axes", "ints"):
        _need(
            isinstance(x, list) and all(_is_int(a) for a in x), f"{where}: expected a list of ints, got {x!r}"
        )
        return tuple(x)
    if kind == "dim":
        return _dec_dim(x, where, allow_negative=True)
    if kind == "dims":
        _need(isinstance(x, list), f"{where}: expected a list of dims, got {x!r}")
        return tuple(_dec_dim(d, where, allow_negative=True) for d in x)
    if kind in ("scalar", "opt_scalar"):
        _need(
            isinstance(x, dict) and len(x) == 1,
            f'{where}: a scalar must be {{"int"|"float"|"bool": value}}, got {x!r}',
        )
        ((tag, val),) = x.items()
        if tag == "bool":
            _need(isinstance(val, bool), f"{where}: bad bool {val!r}")
            return val
        if tag == "int":
            _need(_is_int(val), f"{where}: bad int {val!r}")
            return val
        _need(tag == "float", f"{where}: unknown scalar tag {tag!r} (use int, float or bool)")
        return _dec_float(val, where)
    return x  # int, axis, bool, str: check_attrs checks the type


def _dec_spec(d: dict, where: str) -> TensorSpec:
    _need(isinstance(d["shape"], list), f"{where}: 'shape' must be a list, got {d['shape']!r}")
    _need(
        isinstance(d["dtype"], str) and d["dtype"] in DType.__members__,
        f"{where}: unknown dtype {d['dtype']!r}; use one of {', '.join(t.value for t in DType)}",
    )
    return TensorSpec(tuple(_dec_dim(x, f"{where} shape") for x in d["shape"]), DType(d["dtype"]))


class _Reader:
    """Decoding state: ids seen anywhere in the file, side-file tensors and which were used."""

    def __init__(self, tensors: dict[str, np.ndarray]):
        self.tensors = tensors
        self.ids: set[int] = set()
        self.used_keys: set[str] = set()

    def define(self, scope: dict[int, Value], i: Any, v: Value, where: str) -> None:
        _need(_is_int(i), f"{where}: value id must be an int, got {i!r}")
        _need(i not in self.ids, f"{where}: value id {i} is defined twice")
        self.ids.add(i)
        scope[i] = v

    def constant(self, e: dict, where: str) -> tuple[TensorSpec, np.ndarray]:
        spec = _dec_spec(e, where)
        key = e["key"]
        _need(isinstance(key, str), f"{where}: 'key' must be a string, got {key!r}")
        _need(key in self.tensors, f"{where}: tensor {key!r} is missing from the constants file")
        _need(key not in self.used_keys, f"{where}: tensor {key!r} is used by two constants")
        arr = self.tensors[key]
        _need(
            tuple(arr.shape) == tuple(spec.shape),
            f"{where}: the constants file holds shape {list(arr.shape)} for {key!r}, the graph says "
            f"{list(spec.shape)}",
        )
        got = safetensors_io.dtype_of(arr)
        _need(
            got == spec.dtype,
            f"{where}: the constants file holds {got} for {key!r}, the graph says {spec.dtype}",
        )
        self.used_keys.add(key)
        return spec, arr

    def graph(self, d: Any, where: str, depth: int = 0) -> Graph:
        _need(depth <= MAX_NESTING, f"{where}: subgraphs nest deeper than {MAX_NESTING} levels")
        _check_keys(d, _GRAPH_KEYS, where, "a graph")
        _need(isinstance(d["name"], str), f"{where}: 'name' must be a string, got {d['name']!r}")
        where = f"{where} graph {d['name']!r}"
        for key in ("inputs", "constants", "nodes", "outputs", "output_names"):
            _need(isinstance(d[key], list), f"{where}: {key!r} must be a list")
        scope: dict[int, Value] = {}
        inputs = []
        for k, e in enumerate(d["inputs"]):
            w = f"{where} input {k}"
            _check_keys(e, _INPUT_KEYS, w, "an input")
            _need(e["name"] is None or isinstance(e["name"], str), f"{w}: 'name' must be a string or null")
            v = Value(_dec_spec(e, w), e["name"])
            self.define(scope, e["id"], v, w)
            inputs.append(v)
        constants = {}
        for k, e in enumerate(d["constants"]):
            w = f"{where} constant {k}"
            _check_keys(e, _CONST_KEYS, w, "a constant")
            _need(e["name"] is None or isinstance(e["name"], str), f"{w}: 'name' must be a string or null")
            spec, arr = self.constant(e, w)
            v = Value(spec, e["name"])
            self.define(scope, e["id"], v, w)
            constants[v] = arr
        nodes = [self.node(e, scope, f"{where} node {k}", depth) for k, e in enumerate(d["nodes"])]
        outputs = []
        for j, i in enumerate(d["outputs"]):
            _need(
                _is_int(i) and i in scope,
                f"{where}: output {j} refers to value id {i!r}, which this graph does not define",
            )
            outputs.append(scope[i])
        names = d["output_names"]
        _need(
            len(names) == len(outputs) and all(isinstance(n, str) for n in names),
            f"{where}: 'output_names' must be {len(outputs)} strings, one per output",
        )
        _need(len(set(names)) == len(names), f"{where}: duplicate output names {names}")
        g = Graph(d["name"], inputs, outputs, nodes, constants, list(names))
        g.check()
        return g

    def node(self, e: Any, scope: dict[int, Value], where: str, depth: int = 0) -> Node:
        _need(isinstance(e, dict), f"{where}: a node must be a JSON object, got {type(e).__name__}")
        op = e.get("op")
        _need(isinstance(op, str), f"{where}: missing or bad op name {op!r}")
        _need(op in OPS, f"{where}: unknown op {op!r}; see spec/ir-ops.md for the op set")
        where = f"{where} ({op})"
        _check_keys(e, _NODE_KEYS, where, "a node")
        opdef = OPS[op]
        _need(
            isinstance(e["inputs"], list) and isinstance(e["outputs"], list),
            f"{where}: inputs/outputs must be lists",
        )
        _need(
            isinstance(e["attrs"], dict) and isinstance(e["subgraphs"], dict),
            f"{where}: attrs/subgraphs must be JSON objects",
        )
        ins = []
        for j, i in enumerate(e["inputs"]):
            _need(_is_int(i), f"{where}: input {j} must be a value id, got {i!r}")
            _need(
                i in scope,
                f"{where}: input {j} uses value id {i}, which is not defined before it in this graph",
            )
            ins.append(scope[i])
        unknown = set(e["attrs"]) - set(opdef.attrs)
        _need(
            not unknown, f"{where}: unknown attribute(s) {sorted(unknown)}; {op} takes {sorted(opdef.attrs)}"
        )
        attrs = {
            k: _dec_attr(opdef.attrs[k].kind, v, f"{where} attribute {k!r}") for k, v in e["attrs"].items()
        }
        _need(
            set(e["subgraphs"]) == set(opdef.subgraphs),
            f"{where}: needs subgraphs {sorted(opdef.subgraphs)}, the file has {sorted(e['subgraphs'])}",
        )
        subs = {k: self.graph(sg, f"{where} subgraph {k!r}", depth + 1) for k, sg in e["subgraphs"].items()}
        try:
            attrs = check_attrs(opdef, attrs)
            specs = infer_node(opdef, [v.spec for v in ins], attrs, subs or None)
        except IRError as exc:
            raise IRError(f"{where}: {exc}") from None
        except (ArithmeticError, LookupError, TypeError, ValueError) as exc:  # a type rule fed odd attributes
            raise IRError(
                f"{where}: the op's type rule rejects these inputs/attributes ({type(exc).__name__}: {exc})"
            ) from None
        _need(
            len(specs) == len(e["outputs"]),
            f"{where}: records {len(e['outputs'])} outputs, the op gives {len(specs)}",
        )
        outs = []
        for j, (oe, spec) in enumerate(zip(e["outputs"], specs)):
            w = f"{where} output {j}"
            _check_keys(oe, _OUT_KEYS, w, "an output")
            recorded = _dec_spec(oe, w)
            _need(
                recorded.dtype == spec.dtype and tuple(recorded.shape) == tuple(spec.shape),
                f"{where}: output {j} is recorded as {recorded} but the op gives {spec}",
            )
            v = Value(TensorSpec(spec.shape, spec.dtype))
            self.define(scope, oe["id"], v, w)
            outs.append(v)
        return Node(op, ins, outs, attrs, subs)


def from_dict(doc: Any, tensors: dict[str, np.ndarray], where: str = "graph document") -> Graph:
    """Validate a decoded document against ``tensors`` (the side file's contents) -> Graph."""
    _need(isinstance(doc, dict), f"{where}: the top level must be a JSON object")
    _need(
        doc.get("format") == FORMAT,
        f"{where}: not a tensorweave IR file (format {doc.get('format')!r}, expected {FORMAT!r})",
    )
    version = doc.get("version")
    _need(_is_int(version), f"{where}: missing or bad version {version!r}")
    _need(
        version == VERSION,
        f"{where}: version {version} is not supported (this tensorweave reads version "
        f"{VERSION}); re-export the graph with a matching tensorweave",
    )
    _check_keys({k: v for k, v in doc.items() if k != INLINE}, _DOC_KEYS, where, "the document")
    reader = _Reader(tensors)
    g = reader.graph(doc["graph"], where)
    extra = set(tensors) - reader.used_keys
    _need(not extra, f"{where}: the constants file has tensors no graph uses: {sorted(extra)[:5]}")
    return g


def _parse_json(text: str | bytes, where: str) -> Any:
    def reject_constant(c: str) -> None:
        raise IRError(f"{where}: non-standard JSON constant {c} (floats are encoded as 'nan'/'inf' strings)")

    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        return json.loads(text, parse_constant=reject_constant)
    except IRError:
        raise
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        raise IRError(f"{where}: not valid JSON ({exc})") from None


def _inline_tensors(doc: Any, where: str) -> dict[str, np.ndarray]:
    blob = doc[INLINE]
    _need(isinstance(blob, str), f"{where}: {INLINE!r} must be a base64 string")
    try:
        raw = base64.b64decode(blob.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise IRError(f"{where}: {INLINE!r} is not valid base64") from None
    return safetensors_io.decode(raw, f"{where} ({INLINE})")[0]


def loads(text: str | bytes, where: str = "graph document") -> Graph:
    """Load and fully validate a document written by :func:`dumps` (constants inline)."""
    doc = _parse_json(text, where)
    _need(
        isinstance(doc, dict) and INLINE in doc,
        f"{where}: the document has no {INLINE!r}; a file written by save() keeps its constants in a side "
        "file: use load(path)",
    )
    return from_dict(doc, _inline_tensors(doc, where), where)


def load(path: str) -> Graph:
    """Load and fully validate a graph written by :func:`save` (or a :func:`dumps` document)."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise IRError(f"cannot read graph file {path}: {exc.strerror}") from None
    doc = _parse_json(raw, path)
    if isinstance(doc, dict) and INLINE in doc:
        tensors = _inline_tensors(doc, path)
    else:
        tensors = safetensors_io.load_file(path + SIDE_SUFFIX)[0]
    return from_dict(doc, tensors, path)


__all__ = ["FORMAT", "VERSION", "SIDE_SUFFIX", "save", "load", "dumps", "loads", "to_dict", "from_dict"]
