"""tensorweave: write generation and optimizer math once; run it on PyTorch, TensorFlow, JAX and ONNX."""
from . import backends, ir
from .api import Function, function
from .backends import available, lower, use_backend
from .ir import DType, Graph, IRError, SymDim, TensorSpec, trace

__version__ = "0.1.0"

__all__ = ["backends", "ir", "Function", "function", "available", "lower", "use_backend", "DType", "Graph",
           "IRError", "SymDim", "TensorSpec", "trace", "__version__"]
