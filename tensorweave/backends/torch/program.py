"""The torch Program: generated source ``exec``'d once, called on torch or numpy arrays."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ...ir.graph import Graph
from ...ir.types import DType, IRError, TensorSpec
from ..base import Program
from .codegen import build
from .runtime import FROM_TORCH, array_to_torch, tensor_to_numpy

NAME = "torch"


class TorchProgram(Program):
    """A graph lowered to generated torch code. ``source`` is the generated Python; ``fn`` the
    entry function (``torch.compile``d when ``compile=True``)."""

    backend = NAME

    def __init__(self, graph: Graph, compile: bool = False):
        super().__init__(graph)
        self.entry, self._inner, self.source, self.symbols = build(graph)
        self.compiled = compile
        self.fn = torch.compile(self.entry, dynamic=True) if compile else self.entry

    def _is_native(self, x: Any) -> bool:
        return isinstance(x, torch.Tensor)

    def _native_dtype(self, x: Any) -> Any:
        if x.dtype not in FROM_TORCH:
            return x.dtype  # not an IR dtype: the caller's check reports it with the input's name
        return FROM_TORCH[x.dtype]

    def _from_numpy(self, x: np.ndarray, spec: TensorSpec) -> Any:
        return array_to_torch(x, spec.dtype)

    def _to_numpy(self, x: Any, spec: TensorSpec) -> np.ndarray:
        return tensor_to_numpy(x, spec.dtype)

    def _prepare_native(self, x: Any, spec: TensorSpec) -> Any:
        if x.device.type != "cpu":
            raise IRError(
                f"input {spec.name!r} is on {x.device}; this torch backend runs on CPU tensors, "
                "move it with .cpu()"
            )
        return x.to(torch.int64) if x.dtype == torch.uint32 else x

    def _finish_native(self, x: Any, spec: TensorSpec) -> Any:
        return x.to(torch.uint32) if spec.dtype is DType.uint32 else x

    def _run(self, args: list, env: dict) -> list:
        if self.compiled:
            return list(self.fn(*args))
        return list(self._inner(*args, *[env[s] for s in self.symbols]))

    def export(self, path: str, example_sizes: dict | None = None) -> str:
        """``torch.export`` the program with one ``torch.export.Dim`` per IR symbol and save it as
        a ``.pt2`` file (temporary sibling + rename); see :func:`.artefact.export_program`."""
        from .artefact import export_program

        return export_program(self, path, example_sizes)


def lower(graph: Graph, compile: bool = False, **options: Any) -> TorchProgram:
    """Lower ``graph`` to a :class:`TorchProgram`; ``compile=True`` wraps it in ``torch.compile``."""
    if options:
        raise IRError(f"the torch backend takes the option compile=True/False only, got {sorted(options)}")
    if not isinstance(compile, bool):
        raise IRError(f"torch backend: compile must be True or False, got {compile!r}")
    graph.check()
    return TorchProgram(graph, compile=compile)
