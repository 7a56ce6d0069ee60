"""tensorweave: write generation and optimizer math once; run it on PyTorch, TensorFlow, JAX and ONNX.

``import tensorweave as tw`` gives the public API: ``tw.generate``, ``tw.GenerationConfig``,
``tw.compute_transition_scores``, ``tw.export`` / ``tw.export_generation``, ``tw.trace`` /
``tw.lower`` / ``tw.function``, ``tw.backends``, ``tw.models``. The subpackages that wrap
frameworks load on first use: ``tw.optim`` (``tw.optim.torch``, ``tw.optim.optax``,
``tw.optim.keras``, ``tw.optim.onnx``), ``tw.onnx`` (Hugging Face's ONNX-config API),
``tw.generation`` and ``tw.testing`` (pytest helpers). Importing tensorweave imports no framework.
"""

from __future__ import annotations

import importlib
from importlib import metadata as _metadata
from typing import Any

from . import backends, ir, log, models
from .backends import available, lower, use_backend
from .errors import ArtefactError, ModelLoadError
from .export import export, validate_model_outputs  # noqa: E402 - the name `export` is the function
from .export_generation import export_generation, load_generation
from .frontends.generation import GenerationConfig
from .frontends.generation.streamers import TextIteratorStreamer, TextStreamer
from .function import Function, function
from .generation import GenerateOutput, compute_transition_scores, generate
from .ir import DType, Graph, IRError, SymDim, TensorSpec, trace
from .log import set_verbosity

try:
    __version__ = _metadata.version("tensorweave")
except _metadata.PackageNotFoundError:  # pragma: no cover - a source tree that is not installed
    __version__ = "0+unknown"

_LAZY = ("optim", "onnx", "generation", "testing", "parity", "bench", "io", "errors")


def __getattr__(name: str) -> Any:
    """``tw.optim``, ``tw.onnx``, ``tw.testing``, ...: imported on first use."""
    if name in _LAZY:
        module = importlib.import_module(f"{__name__}.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'tensorweave' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "ArtefactError",
    "DType",
    "Function",
    "GenerateOutput",
    "GenerationConfig",
    "Graph",
    "IRError",
    "ModelLoadError",
    "SymDim",
    "TensorSpec",
    "TextIteratorStreamer",
    "TextStreamer",
    "__version__",
    "available",
    "backends",
    "compute_transition_scores",
    "export",
    "export_generation",
    "function",
    "generate",
    "ir",
    "load_generation",
    "log",
    "lower",
    "models",
    "set_verbosity",
    "trace",
    "use_backend",
    "validate_model_outputs",
]
