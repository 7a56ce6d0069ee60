"""ONNX files: :func:`save_model` (atomic, external data past a threshold) and :func:`load` (run a
saved file in ONNX Runtime). See spec/backends-onnx.md, "Saving and loading".

Saving. A model under :data:`EXTERNAL_DATA_THRESHOLD` bytes is one file written with
``io.atomic_write``. A larger one is two files: ``<name>`` and ``<name>.data`` (every initializer
of :data:`INLINE_BELOW` bytes or more, each at a 4 KiB-aligned offset; small ones such as axes stay
inline so shape inference and ``check_model(full_check=True)`` can read them). Both are written
completely under temporary names (``.<name>.tw-tmp-*``, ``io.TMP_MARK``), then the data file is
renamed into place first and the model second, so no model file ever points at a half-written
or foreign data file. On any failure, Ctrl-C included, the temporary files are removed and the
previous files are untouched. A re-export of the same path without external data removes the
``<name>.data`` the previous model at that path referenced (and only then: a data file that model
did not reference is not ours and stays).

Weights held in memory. A session's proto (``to_model_proto(..., in_memory=arrays)``) keeps its
large constants as numpy arrays beside it; :func:`save_model` with ``in_memory`` writes them
straight from those arrays, one at a time, into the data file, or, below the threshold, into the
model file's protobuf stream (each initializer's ``raw_data`` framed by hand: field tags and
lengths of ``ModelProto.graph``, ``GraphProto.initializer`` and ``TensorProto.raw_data``). The
bytes are those ``SerializeToString`` of the full proto gives, up to field order, which protobuf
parsing does not see; no full copy of the weights is ever built in memory.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import Any, Iterator

import numpy as np
import onnx
from onnx import TensorProto
from onnx.external_data_helper import set_external_data

from ...errors import ArtefactError
from ...io import atomic_write, sha256, sweep_stale, tmp_prefix, verify_member, writable_parent
from ...ir.types import IRError

#: metadata key of a model saved with external data: the sha256 of its ``.data`` file
DATA_SHA256_KEY = "tensorweave.data_sha256"

#: a model of this many bytes or more is saved with its weights in ``<name>.data`` (protobuf's
#: 2 GiB message limit)
EXTERNAL_DATA_THRESHOLD = 2 * 1024**3
#: initializers smaller than this stay inside the model file when external data is used
INLINE_BELOW = 1024
#: external tensors start at multiples of this (ONNX Runtime can memory-map aligned data)
ALIGN = 4096


def _initializers(graph: onnx.GraphProto) -> Iterator[TensorProto]:
    yield from graph.initializer
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from _initializers(attr.g)
            elif attr.type == onnx.AttributeProto.GRAPHS:
                for g in attr.graphs:
                    yield from _initializers(g)


def _references(model_path: str, data_name: str) -> bool:
    """True when the model file at ``model_path`` keeps tensors in ``data_name`` (so that data file
    belongs to it)."""
    try:
        m = onnx.load_model(model_path, load_external_data=False)
    except Exception:  # not an ONNX file (or unreadable): the data file is not provably ours
        return False
    for t in _initializers(m.graph):
        if t.data_location == TensorProto.EXTERNAL:
            if any(e.key == "location" and e.value == data_name for e in t.external_data):
                return True
    return False


def _temp_file(directory: str, final_name: str) -> str:
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=tmp_prefix(os.path.join(directory, final_name)))
    os.close(fd)
    return tmp


def _write_synced(path: str, chunks: Any) -> None:
    with open(path, "wb") as f:
        for chunk in chunks:
            f.write(chunk)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(path, 0o644)


def _externalize(model: onnx.ModelProto, data_name: str, offset: int = 0) -> Iterator[bytes]:
    """Move the large initializers of ``model`` (a copy) to external data at ``data_name`` (from
    byte ``offset`` on), yielding the data file's bytes in order."""
    for t in _initializers(model.graph):
        if not t.HasField("raw_data") or len(t.raw_data) < INLINE_BELOW:
            continue
        pad = -offset % ALIGN
        if pad:
            yield b"\0" * pad
            offset += pad
        raw = t.raw_data
        yield raw
        set_external_data(t, data_name, offset, len(raw))
        t.ClearField("raw_data")
        offset += len(raw)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(message: Any, name: str) -> bytes:
    """The tag of the length-delimited field ``name`` of ``message``'s type (wire type 2)."""
    return _varint(message.DESCRIPTOR.fields_by_name[name].number << 3 | 2)


def _le_bytes(arr: np.ndarray) -> memoryview:
    """``arr``'s bytes in ONNX's raw_data layout (C order, little-endian), without a copy when it
    already is."""
    a = np.ascontiguousarray(arr)
    if a.dtype.byteorder == ">":
        a = a.astype(a.dtype.newbyteorder("<"))
    return memoryview(a.reshape(-1).view(np.uint8))


def in_memory_names(model: onnx.ModelProto, in_memory: dict) -> list[str]:
    """The main-graph initializers of ``model`` whose data is in ``in_memory`` (placeholders)."""
    from .graph import IN_MEMORY_LOCATION

    return [
        t.name
        for t in model.graph.initializer
        if t.data_location == TensorProto.EXTERNAL
        and any(e.key == "location" and e.value == IN_MEMORY_LOCATION for e in t.external_data)
        and t.name in in_memory
    ]


def _embedded_stream(model: onnx.ModelProto, in_memory: dict) -> Iterator[Any]:
    """The serialised bytes of ``model`` with every in-memory placeholder filled from
    ``in_memory``, yielded piece by piece (see the module docstring)."""
    names = set(in_memory_names(model, in_memory))
    m = onnx.ModelProto()
    m.CopyFrom(model)  # small: the placeholders hold no data
    graph = onnx.GraphProto()
    graph.CopyFrom(m.graph)
    kept = [t for t in graph.initializer if t.name not in names]
    filled = [t for t in graph.initializer if t.name in names]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    m.ClearField("graph")
    entries = []
    for t in filled:
        header = TensorProto(name=t.name, data_type=t.data_type, dims=list(t.dims)).SerializeToString()
        data = _le_bytes(in_memory[t.name])
        prefix = header + _field(t, "raw_data") + _varint(data.nbytes)
        entries.append((prefix, data, len(prefix) + data.nbytes))
    body = graph.SerializeToString()
    init_tag = _field(graph, "initializer")
    total = len(body) + sum(len(init_tag) + len(_varint(n)) + n for _, _, n in entries)
    yield m.SerializeToString()
    yield _field(m, "graph") + _varint(total)
    yield body
    for prefix, data, n in entries:
        yield init_tag + _varint(n) + prefix
        yield data


def _external_stream(model: onnx.ModelProto, in_memory: dict, data_name: str) -> Iterator[Any]:
    """The data file of ``model`` (a copy, changed in place) with the in-memory placeholders
    pointed at ``data_name``: aligned array bytes, yielded one array at a time."""
    by_name = {t.name: t for t in model.graph.initializer}
    offset = 0
    for name in in_memory_names(model, in_memory):
        pad = -offset % ALIGN
        if pad:
            yield b"\0" * pad
            offset += pad
        data = _le_bytes(in_memory[name])
        yield data
        t = by_name[name]  # already an EXTERNAL placeholder: point it at the data file
        del t.external_data[:]
        for key, value in (("location", data_name), ("offset", str(offset)), ("length", str(data.nbytes))):
            entry = t.external_data.add()
            entry.key, entry.value = key, value
        offset += data.nbytes
    yield from _externalize(model, data_name, offset)


def save_model(
    model: onnx.ModelProto,
    path: Any,
    external_data_threshold: int | None = None,
    in_memory: dict | None = None,
) -> str:
    """Write ``model`` to ``path`` atomically; its weights go to ``<path>.data`` once the model
    reaches ``external_data_threshold`` bytes (:data:`EXTERNAL_DATA_THRESHOLD` when None).
    ``in_memory``: the arrays of a session proto's placeholders (written from the arrays, see
    the module docstring). Returns the absolute path."""
    threshold = EXTERNAL_DATA_THRESHOLD if external_data_threshold is None else external_data_threshold
    held = in_memory or {}
    size = model.ByteSize() + sum(held[n].nbytes for n in in_memory_names(model, held))
    path = os.path.abspath(os.fspath(path))
    directory = writable_parent(path)
    base = os.path.basename(path)
    data_name = base + ".data"
    data_path = os.path.join(directory, data_name)
    # decided before anything is replaced: is an existing <name>.data the previous model's?
    stale = os.path.isfile(data_path) and os.path.isfile(path) and _references(path, data_name)
    if size < threshold:
        if held:
            tmp = _temp_file(directory, base)
            try:
                _write_synced(tmp, _embedded_stream(model, held))
                os.replace(tmp, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.remove(tmp)
                raise
        else:
            atomic_write(path, model.SerializeToString())
        os.chmod(path, 0o644)
        if stale:
            with contextlib.suppress(FileNotFoundError):
                os.remove(data_path)
        return path
    temps: list[str] = []
    sweep_stale(path)
    sweep_stale(data_path)
    try:
        m = onnx.ModelProto()
        m.CopyFrom(model)
        tmp_data = _temp_file(directory, data_name)
        temps.append(tmp_data)
        _write_synced(tmp_data, _external_stream(m, held, data_name) if held else _externalize(m, data_name))
        entry = m.metadata_props.add()  # pins the data file: a stale pair is an error on load
        entry.key, entry.value = DATA_SHA256_KEY, sha256(tmp_data)
        tmp_model = _temp_file(directory, base)
        temps.append(tmp_model)
        _write_synced(tmp_model, [m.SerializeToString()])
        os.replace(tmp_data, data_path)  # the data first: the new model must never miss its data
        temps.remove(tmp_data)
        os.replace(tmp_model, path)
        temps.remove(tmp_model)
    except BaseException:
        for tmp in temps:
            with contextlib.suppress(OSError):
                os.remove(tmp)
        raise
    return path


def check_files(path: str) -> None:
    """Before ONNX Runtime reads ``path``: the export folder's manifest (when there is one) holds,
    and a model saved with external data finds the very ``.data`` file it was saved with
    (sha256 in its metadata); a stale pair (old graph + new data) is an ``ArtefactError``.
    Loading an ONNX file runs no code from it (protobuf parsing; standard-domain operators)."""
    verify_member(path)
    try:
        m = onnx.load_model(path, load_external_data=False)
    except Exception as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise ArtefactError(f"{path} is not an ONNX model ({first}); export it again") from None
    want = {p.key: p.value for p in m.metadata_props}.get(DATA_SHA256_KEY)
    if want is None:
        return
    data = os.path.join(os.path.dirname(os.path.abspath(path)), os.path.basename(path) + ".data")
    if not os.path.isfile(data):
        raise ArtefactError(f"{path} keeps its weights in {data}, which is missing; export it again")
    if sha256(data) != want:
        raise ArtefactError(
            f"{data} is not the data file {path} was saved with (a stale or mixed pair); export it again"
        )


class OnnxArtefact:
    """A saved ONNX file run by ONNX Runtime (CPU): ``artefact(*arrays, **named_arrays)`` takes the
    inputs in order or by name (numpy arrays) and returns the outputs in order: one array, or a
    tuple when there are several (as a Program does)."""

    def __init__(self, path: Any):
        import onnxruntime as ort

        from .runtime import session_options

        self.path = os.fspath(path)
        if not os.path.isfile(self.path):
            raise FileNotFoundError(f"{self.path} does not exist; export the model first")
        check_files(self.path)
        self.session = ort.InferenceSession(self.path, session_options(), providers=["CPUExecutionProvider"])
        inputs = self.session.get_inputs()
        self.input_names = [i.name for i in inputs]
        self.output_names = [o.name for o in self.session.get_outputs()]
        self._float_inputs = {i.name for i in inputs if i.type == "tensor(float)"}

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        args = list(args)
        for name in self.input_names[len(args) :]:
            if name not in kwargs:
                raise IRError(f"missing input {name!r}; {self.path} takes {self.input_names}")
            args.append(kwargs.pop(name))
        if kwargs:
            raise IRError(f"unknown input(s) {sorted(kwargs)}; {self.path} takes {self.input_names}")
        if len(args) != len(self.input_names):
            raise IRError(
                f"{self.path} takes {len(self.input_names)} input(s) {self.input_names}, got {len(args)}"
            )
        feeds = {}
        for name, a in zip(self.input_names, args):
            arr = np.ascontiguousarray(a)
            if name in self._float_inputs and arr.dtype.name == "bfloat16":  # declared float32
                arr = arr.astype(np.float32)
            feeds[name] = arr
        outs = self.session.run(self.output_names, feeds)
        return outs[0] if len(outs) == 1 else tuple(outs)

    def __repr__(self) -> str:
        return (
            f"<OnnxArtefact {self.path}({', '.join(self.input_names)}) -> ({', '.join(self.output_names)})>"
        )


def load(path: Any) -> OnnxArtefact:
    """The ONNX file at ``path`` (external data beside it) as a callable run by ONNX Runtime."""
    return OnnxArtefact(path)
