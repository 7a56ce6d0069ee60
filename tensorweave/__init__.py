"""tensorweave: write generation and optimizer math once; run it on PyTorch, TensorFlow, JAX and ONNX."""

from . import backends, ir, models
from .api import Function, function
from .backends import available, lower, use_backend
from .export import export, validate_model_outputs  # noqa: E402 - the name `export` is the function
from .export_generation import export_generation, load_generation
from .frontends.generation import GenerationConfig, compute_transition_scores
from .frontends.generation.streamers import TextIteratorStreamer, TextStreamer
from .generation import GenerateOutput, generate
from .ir import DType, Graph, IRError, SymDim, TensorSpec, trace

__version__ = "0.1.0"

__all__ = [
    "GenerationConfig",
    "compute_transition_scores",
    "TextStreamer",
    "TextIteratorStreamer",
    "GenerateOutput",
    "generate",
    "backends",
    "ir",
    "models",
    "Function",
    "function",
    "available",
    "lower",
    "use_backend",
    "DType",
    "Graph",
    "IRError",
    "SymDim",
    "TensorSpec",
    "trace",
    "__version__",
    "export",
    "validate_model_outputs",
    "export_generation",
    "load_generation",
]
