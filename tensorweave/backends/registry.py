"""Backend choice at runtime.

Precedence: an explicit ``backend=`` argument > the innermost
``with use_backend(name)`` > the ``TENSORWEAVE_BACKEND`` environment variable >
the first installed backend of :data:`ORDER`.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import importlib.util
import os
from typing import Any, Iterator

from ..ir.types import IRError
from ..log import quiet_import

#: Default preference when nothing is chosen explicitly (numpy is always there).
ORDER = ("torch", "jax", "onnx", "tensorflow", "numpy")
ALL = ("numpy", "torch", "tensorflow", "jax", "onnx")

#: framework modules each backend needs, and the pip extra that installs them
REQUIRES = {
    "numpy": (),
    "torch": ("torch",),
    "tensorflow": ("tensorflow",),
    "jax": ("jax",),
    "onnx": ("onnx", "onnxruntime"),
}
EXTRA = {"numpy": None, "torch": "torch", "tensorflow": "tensorflow", "jax": "jax", "onnx": "onnx"}
MODULE = {"numpy": "numpy", "torch": "torch", "tensorflow": "tensorflow", "jax": "jax", "onnx": "onnx"}
#: backends whose lowered programs compile once per concrete input shape (``jax.jit``); the others
#: run symbolic dims without recompiling (generation buckets prompt lengths for these, and for a
#: program lowered with ``jit_compile=True``)
SHAPE_SPECIALISING = frozenset({"jax"})
#: lowering options of the fused greedy / sampling programs of decoder-only models: tensorflow's
#: run under XLA (SmolLM2 greedy 23.6 -> 38.4 tok/s; its 4-beam program is slower under XLA,
#: 17.9 -> 10.5 tok/s, so beam search is not compiled so; spec/backends-tensorflow.md)
DECODE_OPTIONS: dict[str, tuple] = {"tensorflow": (("jit_compile", True),)}
ALIASES = {
    "tf": "tensorflow",
    "pytorch": "torch",
    "onnxruntime": "onnx",
    "ort": "onnx",
    "np": "numpy",
    "flax": "jax",
}

_current: contextvars.ContextVar[str | None] = contextvars.ContextVar("tensorweave_backend", default=None)


def _canonical(name: str) -> str:
    if not isinstance(name, str):
        raise IRError(f"a backend name must be a string, got {name!r}")
    n = ALIASES.get(name.lower(), name.lower())
    if n not in ALL:
        raise IRError(f"unknown backend {name!r}; choose one of {', '.join(ALL)}")
    return n


def is_installed(name: str) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in REQUIRES[_canonical(name)])


def available() -> list[str]:
    """Installed backends, in the documented order of ``ALL``."""
    return [b for b in ALL if is_installed(b)]


def missing_message(name: str) -> str:
    n = _canonical(name)
    return (
        f"backend {n!r} needs {' and '.join(REQUIRES[n])}, which is not installed; "
        f"install it with: pip install 'tensorweave[{EXTRA[n]}]'"
    )


def get(name: str) -> Any:
    """The backend module (``lower``, ``NAME``); one-line error if unknown or not installed."""
    n = _canonical(name)
    if not is_installed(n):
        raise IRError(missing_message(n))
    for framework in REQUIRES[n]:  # start-up noise (TensorFlow's C++ lines) goes to the debug log
        quiet_import(framework)
    return importlib.import_module(f"tensorweave.backends.{MODULE[n]}")


def framework_version(name: str) -> str:
    """The installed framework's version(s) for a backend, e.g. ``"onnx 1.19.0, onnxruntime 1.23.0"``."""
    from importlib import metadata

    n = _canonical(name)
    dists = {
        "numpy": ("numpy",),
        "onnx": ("onnx", "onnxruntime"),
        "tensorflow": ("tensorflow-cpu", "tensorflow"),
    }
    parts = []
    for dist in dists.get(n, (n,)):
        try:
            parts.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            continue
        if n == "tensorflow":
            break
    return ", ".join(parts) or "version unknown"


def resolve(backend: str | None = None) -> str:
    """The backend to use now (see the module docstring for the precedence)."""
    if backend is not None:
        return _canonical(backend)
    ctx = _current.get()
    if ctx is not None:
        return ctx
    env = os.environ.get("TENSORWEAVE_BACKEND")
    if env:
        return _canonical(env)
    for b in ORDER:
        if is_installed(b):
            return b
    return "numpy"


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[str]:
    """``with use_backend("jax"): ...`` makes ``name`` the default inside the block."""
    n = _canonical(name)
    if not is_installed(n):
        raise IRError(missing_message(n))
    token = _current.set(n)
    try:
        yield n
    finally:
        _current.reset(token)


def lower(graph: Any, backend: str | None = None, **options: Any) -> Any:
    """Lower a graph on the chosen backend; returns its Program."""
    return get(resolve(backend)).lower(graph, **options)
