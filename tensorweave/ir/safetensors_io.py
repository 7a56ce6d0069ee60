"""A small, strict reader/writer of the safetensors format, in numpy only.

Layout: an 8-byte little-endian header length N, N bytes of JSON header
``{name: {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, "__metadata__": {...}}``,
then the raw little-endian tensor bytes. Reading validates the header (length within the file,
JSON object, known dtypes, offsets inside the data and consistent with shape x itemsize, no
overlaps) and never executes or unpickles anything.
"""
from __future__ import annotations

import json
import os
import struct
import tempfile
from typing import Mapping

import numpy as np

from .types import DType, IRError

_CODES = {DType.bool: "BOOL", DType.int32: "I32", DType.int64: "I64", DType.uint32: "U32", DType.float16: "F16",
          DType.bfloat16: "BF16", DType.float32: "F32", DType.float64: "F64"}
_FROM_CODE = {v: k for k, v in _CODES.items()}
MAX_HEADER = 100 * 1024 * 1024


def _dtype_of(arr: np.ndarray) -> DType:
    if arr.dtype.name == "bfloat16":
        return DType.bfloat16
    try:
        return DType(arr.dtype.name)
    except ValueError:
        raise IRError(f"cannot store dtype {arr.dtype} in safetensors; use one of {', '.join(d.value for d in DType)}") from None


def encode(tensors: Mapping[str, np.ndarray], metadata: Mapping[str, str] | None = None) -> bytes:
    header: dict = {}
    chunks = []
    offset = 0
    for name in sorted(tensors):
        arr = np.asarray(tensors[name])
        dt = _dtype_of(arr)
        data = np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<"), copy=False).tobytes() if arr.size else b""
        header[name] = {"dtype": _CODES[dt], "shape": list(arr.shape), "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * ((8 - len(head) % 8) % 8)
    return struct.pack("<Q", len(head)) + head + b"".join(chunks)


def save_file(tensors: Mapping[str, np.ndarray], path: str, metadata: Mapping[str, str] | None = None) -> str:
    """Write atomically (temporary file in the same directory, then rename)."""
    data = encode(tensors, metadata)
    path = os.path.abspath(path)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def decode(buf: bytes, where: str = "safetensors data") -> tuple[dict[str, np.ndarray], dict]:
    """Parse and validate; returns (tensors, metadata). Raises IRError naming the problem."""
    if len(buf) < 8:
        raise IRError(f"{where}: truncated file ({len(buf)} bytes, the 8-byte header length is missing)")
    (n,) = struct.unpack("<Q", buf[:8])
    if n > MAX_HEADER or 8 + n > len(buf):
        raise IRError(f"{where}: header length {n} runs past the end of the file ({len(buf)} bytes); "
                      "the file is truncated or corrupt")
    try:
        header = json.loads(buf[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IRError(f"{where}: header is not valid JSON ({exc})") from None
    if not isinstance(header, dict):
        raise IRError(f"{where}: header must be a JSON object")
    data = memoryview(buf)[8 + n:]
    metadata = header.pop("__metadata__", {}) or {}
    if not isinstance(metadata, dict):
        raise IRError(f"{where}: __metadata__ must be an object")
    spans = []
    out: dict = {}
    for name, info in header.items():
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            raise IRError(f"{where}: tensor {name!r} needs exactly dtype, shape and data_offsets")
        code, shape, offs = info["dtype"], info["shape"], info["data_offsets"]
        if code not in _FROM_CODE:
            raise IRError(f"{where}: tensor {name!r} has unsupported dtype {code!r}")
        if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
            raise IRError(f"{where}: tensor {name!r} has a bad shape {shape!r}")
        if (not isinstance(offs, list) or len(offs) != 2 or not all(isinstance(o, int) and not isinstance(o, bool)
                                                                    for o in offs)):
            raise IRError(f"{where}: tensor {name!r} has bad data_offsets {offs!r}")
        begin, end = offs
        dt = _FROM_CODE[code]
        want = int(np.prod(shape, dtype=np.int64)) * dt.itemsize
        if not 0 <= begin <= end <= len(data):
            raise IRError(f"{where}: tensor {name!r} data_offsets {offs} lie outside the {len(data)}-byte data "
                          "section; the file is truncated or corrupt")
        if end - begin != want:
            raise IRError(f"{where}: tensor {name!r} has {end - begin} bytes but shape {shape} x {code} needs {want}")
        spans.append((begin, end, name))
        out[name] = np.frombuffer(data[begin:end], dtype=dt.to_numpy().newbyteorder("<")).reshape(shape).copy()
    spans.sort()
    for (b1, e1, n1), (b2, e2, n2) in zip(spans, spans[1:]):
        if b2 < e1:
            raise IRError(f"{where}: tensors {n1!r} and {n2!r} overlap in the data section")
    return out, metadata


def load_file(path: str) -> tuple[dict[str, np.ndarray], dict]:
    try:
        with open(path, "rb") as f:
            buf = f.read()
    except OSError as exc:
        raise IRError(f"cannot read constants file {path}: {exc.strerror}") from None
    return decode(buf, path)
