"""The export cache: serialised ``jax.export`` programs kept across processes, so that a new process
runs a program it has seen before without tracing the IR again (spec/backends-jax.md).

A :class:`~tensorweave.backends.jax.program.JaxProgram` called at top level with input shapes it
has not seen computes :func:`program_key` and looks for ``<export_cache_dir()>/<key>.jaxexp``:

- found: ``jax.export.deserialize`` it and run ``jax.jit(exported.call)``; its XLA compile then
  hits JAX's persistent compilation cache (``<cache root>/jax``) as a plain jit would;
- missing (or damaged): ``jax.export.export`` the program for these shapes (one trace of the IR,
  as the plain jit needs anyway), write the bytes atomically after :data:`MAGIC` and their sha256
  (unless it exported in under :data:`MIN_EXPORT_SECONDS`), and run the deserialised copy, so
  the writing process and every later one compile the very same module (the XLA cache hits in the
  next process, and results are the same bit for bit);
- anything failing (no cache, a read-only directory, a corrupt or foreign file, an op jax cannot
  export) ends in the plain ``jax.jit`` path, logged at debug level; nothing raises from here.

The key is a sha256 over: a structural description of the graph (ops, attributes, value types,
wiring, subgraphs; constants passed as arguments — the hoisted weights — by dtype and shape only,
every other constant by its bytes), the concrete input and hoisted-argument shapes and dtypes, the
jax / jaxlib versions, the 64-bit state and the few JAX flags that change a trace, the platform,
and a hash of the source files that define the lowering (this package, ``backends/base.py`` and
``tensorweave/ir``), so editing a rule never runs a stale program. A file is never unpickled:
``jax.export.deserialize`` reads a flatbuffer and rejects garbage.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any, Iterable, Sequence

import numpy as np

from ...ir.graph import Graph, Value
from ...ir.types import DType, Shape, SymDim
from ...log import logger
from .runtime import cache_subdir

#: bump when the key's layout or the stored program's calling convention changes
FORMAT = "tensorweave-jax-export/1"
SUFFIX = ".jaxexp"
#: an entry is MAGIC, the sha256 of the payload, then the payload (``Exported.serialize()``)
MAGIC = b"tensorweave-jaxexp-1\n"
#: a program that traces and exports faster than this is not stored (it would save less than
#: this in the next process, and test suites lower thousands of tiny programs); like JAX's own
#: ``jax_persistent_cache_min_compile_time_secs``
MIN_EXPORT_SECONDS = 0.1
#: a program jax could not export: later processes go to the plain jit at once
NO_EXPORT = ".noexport"
#: JAX flags that change what a trace produces (read inside ``x64()``)
_TRACE_FLAGS = (
    "jax_enable_x64",
    "jax_default_matmul_precision",
    "jax_numpy_dtype_promotion",
    "jax_numpy_rank_promotion",
    "jax_default_prng_impl",
)

_source_digest: str | None = None


def export_cache_dir() -> str | None:
    """``<cache_root()>/jax-export``, created if missing; None when the cache is off or the
    directory cannot be created. Used even when the user set JAX's own compilation cache
    directory (that one only holds XLA executables)."""
    return cache_subdir("jax-export")


class Unkeyable(Exception):
    """The graph holds an attribute whose text differs between processes (an object's address)."""


def _source_files() -> list[str]:
    here = os.path.dirname(os.path.abspath(__file__))
    backends = os.path.dirname(here)
    package = os.path.dirname(backends)
    files = [os.path.join(backends, "base.py")]
    for top in (here, os.path.join(package, "ir")):
        for root, dirs, names in os.walk(top):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            files.extend(os.path.join(root, n) for n in sorted(names) if n.endswith(".py"))
    return files


def source_digest() -> str:
    """A hash of the source files that define how a graph lowers to jax (read once a process)."""
    global _source_digest
    if _source_digest is None:
        h = hashlib.sha256()
        for path in _source_files():
            h.update(os.path.basename(path).encode() + b"\0")
            try:
                with open(path, "rb") as f:
                    h.update(f.read())
            except OSError:  # an installation without sources: the versions still key it
                h.update(b"?")
        _source_digest = h.hexdigest()
    return _source_digest


# ------------------------------------------------------------------ the structural description

_SCALARS = frozenset((bool, int, float, str, type(None), DType, SymDim, Shape))


def _attr(v: Any) -> str:
    """An attribute value as text that is equal exactly when the value lowers the same way
    (repr keeps 1, 1.0 and True apart; float repr round-trips)."""
    t = type(v)
    if t in _SCALARS:
        return f"{t.__name__}:{v!r}"
    if t is tuple or t is list:
        if _SCALARS.issuperset(map(type, v)):
            return f"{t.__name__}:{v!r}"
        return t.__name__ + "(" + ",".join(_attr(e) for e in v) + ")"
    if isinstance(v, dict):
        items = sorted(v.items(), key=lambda kv: repr(kv[0]))
        return "dict(" + ",".join(f"{_attr(k)}={_attr(x)}" for k, x in items) + ")"
    if isinstance(v, np.ndarray):
        data = np.ascontiguousarray(v).tobytes()
        return f"ndarray:{v.dtype.str}{v.shape}:{hashlib.sha256(data).hexdigest()}"
    if isinstance(v, np.generic):
        return f"{type(v).__name__}:{v.dtype.str}:{v.tobytes().hex()}"
    if isinstance(v, (tuple, list)):  # a named tuple, a list subclass
        return f"{t.__qualname__}(" + ",".join(_attr(e) for e in v) + ")"
    text = repr(v)
    if " at 0x" in text:
        raise Unkeyable(f"attribute {text[:80]} has no stable text")
    return f"{t.__module__}.{t.__qualname__}:{text}"


def _describe(graph: Graph, hoisted: set, h: Any, specs: dict | None = None) -> None:
    """Feed ``graph``'s structure into the hash ``h`` (value identities become definition order)."""
    specs = {} if specs is None else specs  # id(TensorSpec) -> text (a Shape's text is slow)

    def _spec(v: Value) -> str:
        spec = v.spec
        text = specs.get(id(spec))
        if text is None:
            text = specs[id(spec)] = f"{spec.dtype.value}{spec.shape}"
        return text

    index: dict[Value, str] = {}  # value -> its definition number, as text
    lines: list[str] = ["graph", *("in " + _spec(v) for v in graph.inputs)]
    for v in graph.inputs:
        index[v] = str(len(index))
    for v, arr in graph.constants.items():
        index[v] = str(len(index))
        if v in hoisted:  # an argument of the compiled program: its values do not matter
            lines.append("arg " + _spec(v))
            continue
        arr = np.asarray(arr)
        data = np.ascontiguousarray(arr).tobytes()
        lines.append(f"const {_spec(v)} {arr.dtype.str}{arr.shape} {len(data)}")
        h.update("\n".join(lines).encode())
        lines = []
        h.update(data)
    for node in graph.nodes:
        ins = ",".join([index[v] for v in node.inputs])
        attrs = ";".join([f"{k}={_attr(a)}" for k, a in sorted(node.attrs.items())])
        outs = ",".join([_spec(o) for o in node.outputs])
        lines.append(f"{node.op}({ins}) {{{attrs}}} -> {outs} [{len(node.subgraphs)}]")
        if node.subgraphs:
            h.update("\n".join(lines).encode())
            lines = []
            for name in sorted(node.subgraphs):
                h.update(b"\nsub " + name.encode() + b"\n")
                _describe(node.subgraphs[name], set(), h, specs)  # subgraph constants are literals
            h.update(b"\nend\n")
        for o in node.outputs:
            index[o] = str(len(index))
    lines.append("out " + ",".join([index[v] for v in graph.outputs]))
    h.update("\n".join(lines).encode())


def _versions() -> str:
    import jax
    import jaxlib

    from .runtime import x64

    with x64():  # the state every trace and call of the program runs in
        flags = ",".join(f"{f}={getattr(jax.config, f, None)!r}" for f in _TRACE_FLAGS)
    try:
        from jax import export as jexport

        platform = jexport.default_export_platform()
    except Exception:  # pragma: no cover - older jax
        platform = jax.default_backend()
    device = jax.devices()[0]
    return (
        f"{FORMAT} jax={jax.__version__} jaxlib={jaxlib.__version__} {flags} "
        f"platform={platform} device={device.platform}/{device.device_kind} src={source_digest()}"
    )


def program_key(graph: Graph, hoisted: Iterable[Value], signature: Sequence[tuple]) -> str | None:
    """The cache key of ``graph`` called with hoisted constants ``hoisted`` (passed as arguments
    in this order) and concrete argument types ``signature`` (``(shape, numpy dtype)`` per
    hoisted array, then per input); None when the graph cannot be keyed (:class:`Unkeyable`)."""
    h = hashlib.sha256()
    h.update(_versions().encode() + b"\n")
    h.update(("sig " + ";".join(f"{np.dtype(d).str}{tuple(s)}" for s, d in signature) + "\n").encode())
    try:
        _describe(graph, set(hoisted), h)
    except Unkeyable as exc:
        logger.debug("jax export cache not used for %s: %s", graph.name, exc)
        return None
    return h.hexdigest()


# ------------------------------------------------------------------ files


def entry_path(directory: str, key: str) -> str:
    return os.path.join(directory, key + SUFFIX)


def read(path: str) -> Any | None:
    """The ``jax.export.Exported`` stored at ``path``; None (logged) when it is missing, unreadable,
    fails its checksum or is not a serialised program of this jax."""
    from jax import export as jexport

    try:
        with open(path, "rb") as f:
            blob = f.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        logger.debug("jax export cache: cannot read %s (%s)", path, exc)
        return None
    head, digest, data = blob[: len(MAGIC)], blob[len(MAGIC) : len(MAGIC) + 32], blob[len(MAGIC) + 32 :]
    if head != MAGIC or hashlib.sha256(data).digest() != digest:
        logger.debug("jax export cache: %s is not a tensorweave entry or is damaged", path)
        return None
    try:
        return jexport.deserialize(bytearray(data))
    except Exception as exc:  # flatbuffer / version errors have no common type
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        logger.debug("jax export cache: %s is not usable (%s: %s)", path, type(exc).__name__, first[:200])
        return None


def write(path: str, data: bytes) -> bool:
    """Write ``data`` (a serialised program) to ``path`` after a magic line and its sha256,
    atomically (a temporary sibling, then one rename); False (logged) when it cannot be written.
    A failed write leaves no partial file."""
    from ...io import atomic_write

    data = bytes(data)
    try:
        atomic_write(path, MAGIC + hashlib.sha256(data).digest() + data)
        return True
    except Exception as exc:  # OSError, ArtefactError (read-only directory), ...
        logger.debug("jax export cache: cannot write %s (%s)", path, exc)
        return False


def mark_unexportable(directory: str, key: str) -> None:
    write(os.path.join(directory, key + NO_EXPORT), b"")


def remove(path: str) -> None:
    """Drop an entry that failed to run (a later process exports it again)."""
    try:
        os.unlink(path)
    except OSError:
        pass


def is_unexportable(directory: str, key: str) -> bool:
    return os.path.exists(os.path.join(directory, key + NO_EXPORT))
