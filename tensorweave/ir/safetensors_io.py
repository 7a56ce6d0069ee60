"""A small, strict reader/writer of the safetensors format, in numpy only.

Layout (https://github.com/huggingface/safetensors, format section):

    [8 bytes: N, little-endian u64] [N bytes: JSON header] [data section]

The header is ``{name: {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, ...,
"__metadata__": {str: str}}``; offsets are relative to the data section and the tensors'
byte ranges tile it exactly (contiguous, no gaps, no overlaps, nothing left over), as the
reference implementation requires. Tensor bytes are little-endian, row-major.

Reading validates all of this (header length within the file, a JSON object, known dtypes,
``end - begin == prod(shape) * itemsize``, the tiling, bool bytes being 0 or 1) and raises one
``IRError`` naming the problem; it never executes or unpickles anything. Writing goes to a
temporary file in the target directory which is then renamed over the target (atomic).
"""

from __future__ import annotations

import json
import math
import os
import struct
import tempfile
from typing import Mapping

import numpy as np

from .types import DType, IRError

_CODES = {
    DType.bool: "BOOL",
    DType.int32: "I32",
    DType.int64: "I64",
    DType.uint32: "U32",
    DType.float16: "F16",
    DType.bfloat16: "BF16",
    DType.float32: "F32",
    DType.float64: "F64",
}
_FROM_CODE = {v: k for k, v in _CODES.items()}
MAX_HEADER = 100 * 1024 * 1024  # the reference implementation's limit too
METADATA = "__metadata__"


def dtype_of(arr: np.ndarray) -> DType:
    """The IR dtype of a numpy array (bfloat16 is ml_dtypes' extension type)."""
    if arr.dtype.name == "bfloat16":
        return DType.bfloat16
    try:
        return DType(arr.dtype.name)
    except ValueError:
        raise IRError(
            f"cannot store dtype {arr.dtype} in safetensors; cast to one of "
            f"{', '.join(d.value for d in DType)}"
        ) from None


def encode(tensors: Mapping[str, np.ndarray], metadata: Mapping[str, str] | None = None) -> bytes:
    """The bytes of a safetensors file holding ``tensors`` (data in sorted-name order)."""
    header: dict = {}
    chunks = []
    offset = 0
    for name in sorted(tensors):
        if not isinstance(name, str) or not name or name == METADATA:
            raise IRError(
                f"bad safetensors tensor name {name!r}; use a non-empty string other than {METADATA!r}"
            )
        arr = np.asarray(tensors[name])
        dt = dtype_of(arr)
        data = np.ascontiguousarray(arr).astype(dt.to_numpy().newbyteorder("<"), copy=False).tobytes()
        header[name] = {
            "dtype": _CODES[dt],
            "shape": list(arr.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        chunks.append(data)
        offset += len(data)
    if metadata:
        header[METADATA] = {str(k): str(v) for k, v in metadata.items()}
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * ((8 - len(head) % 8) % 8)  # pad so that the data section is 8-byte aligned
    return struct.pack("<Q", len(head)) + head + b"".join(chunks)


def atomic_write(path: str, data: bytes) -> str:
    """Write ``data`` to a temporary file next to ``path``, then rename it over ``path``."""
    path = os.path.abspath(os.fspath(path))
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tw-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def save_file(tensors: Mapping[str, np.ndarray], path: str, metadata: Mapping[str, str] | None = None) -> str:
    """Write a safetensors file atomically; returns its absolute path."""
    return atomic_write(path, encode(tensors, metadata))


def _bad(where: str, msg: str) -> IRError:
    return IRError(f"{where}: {msg}")


def _is_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def decode(buf: bytes, where: str = "safetensors data") -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Parse and validate; returns (tensors, metadata). Raises IRError naming the problem."""
    if len(buf) < 8:
        raise _bad(where, f"truncated file ({len(buf)} bytes, the 8-byte header length is missing)")
    (n,) = struct.unpack("<Q", buf[:8])
    if n > MAX_HEADER or 8 + n > len(buf):
        raise _bad(
            where,
            f"header length {n} runs past the end of the file ({len(buf)} bytes); "
            "the file is truncated or corrupt",
        )
    try:
        header = json.loads(bytes(buf[8 : 8 + n]).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        raise _bad(where, f"header is not valid JSON ({exc})") from None
    if not isinstance(header, dict):
        raise _bad(where, "header must be a JSON object")
    metadata = header.pop(METADATA, None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise _bad(where, f"{METADATA} must be an object of strings")
    data = memoryview(buf)[8 + n :]
    spans: list[tuple[int, int, str]] = []
    for name, info in header.items():
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            raise _bad(where, f"tensor {name!r} needs exactly dtype, shape and data_offsets")
        code, shape, offs = info["dtype"], info["shape"], info["data_offsets"]
        if not isinstance(code, str) or code not in _FROM_CODE:
            raise _bad(
                where,
                f"tensor {name!r} has unsupported dtype {code!r}; this reader knows {', '.join(_FROM_CODE)}",
            )
        if not isinstance(shape, list) or not all(_is_int(d) and d >= 0 for d in shape):
            raise _bad(where, f"tensor {name!r} has a bad shape {shape!r}")
        if not isinstance(offs, list) or len(offs) != 2 or not all(_is_int(o) for o in offs):
            raise _bad(where, f"tensor {name!r} has bad data_offsets {offs!r}")
        begin, end = offs
        if not 0 <= begin <= end <= len(data):
            raise _bad(
                where,
                f"tensor {name!r} data_offsets {offs} lie outside the {len(data)}-byte data section; "
                "the file is truncated or corrupt",
            )
        want = math.prod(shape) * _FROM_CODE[code].itemsize
        if end - begin != want:
            raise _bad(
                where, f"tensor {name!r} has {end - begin} bytes but shape {shape} x {code} needs {want}"
            )
        spans.append((begin, end, name))
    spans.sort()
    pos, prev = 0, None
    for begin, end, name in spans:
        if begin < pos:
            raise _bad(where, f"tensors {prev!r} and {name!r} overlap in the data section")
        if begin > pos:
            raise _bad(
                where, f"bytes {pos}..{begin} of the data section belong to no tensor (before {name!r})"
            )
        pos, prev = end, name
    if pos != len(data):
        raise _bad(
            where,
            f"the data section has {len(data) - pos} trailing bytes that belong to no tensor; "
            "the file is corrupt",
        )
    out: dict[str, np.ndarray] = {}
    for begin, end, name in spans:
        dt = _FROM_CODE[header[name]["dtype"]]
        raw = data[begin:end]
        if dt is DType.bool and len(raw) and int(np.frombuffer(raw, np.uint8).max()) > 1:
            raise _bad(where, f"tensor {name!r} is BOOL but holds bytes other than 0 and 1")
        arr = np.frombuffer(raw, dtype=dt.to_numpy().newbyteorder("<")).reshape(header[name]["shape"])
        out[name] = arr.astype(dt.to_numpy())  # a native-order, writable copy
    return out, dict(metadata)


def load_file(path: str) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Read and validate a safetensors file; returns (tensors, metadata)."""
    try:
        with open(path, "rb") as f:
            buf = f.read()
    except OSError as exc:
        raise IRError(f"cannot read constants file {path}: {exc.strerror}") from None
    return decode(buf, os.fspath(path))
