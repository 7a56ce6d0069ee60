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


def _externalize(model: onnx.ModelProto, data_name: str) -> Iterator[bytes]:
    """Move the large initializers of ``model`` (a copy) to external data at ``data_name``,
    yielding the data file's bytes in order."""
    offset = 0
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


def save_model(model: onnx.ModelProto, path: Any, external_data_threshold: int | None = None) -> str:
    """Write ``model`` to ``path`` atomically; its weights go to ``<path>.data`` once the model
    reaches ``external_data_threshold`` bytes (:data:`EXTERNAL_DATA_THRESHOLD` when None).
    Returns the absolute path."""
    threshold = EXTERNAL_DATA_THRESHOLD if external_data_threshold is None else external_data_threshold
    path = os.path.abspath(os.fspath(path))
    directory = writable_parent(path)
    base = os.path.basename(path)
    data_name = base + ".data"
    data_path = os.path.join(directory, data_name)
    # decided before anything is replaced: is an existing <name>.data the previous model's?
    stale = os.path.isfile(data_path) and os.path.isfile(path) and _references(path, data_name)
    if model.ByteSize() < threshold:
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
        _write_synced(tmp_data, _externalize(m, data_name))
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
