"""The ONNX Runtime program: :class:`OnnxProgram` (an ``InferenceSession`` over the lowered
``ModelProto``) and :func:`lower` (spec/backends-onnx.md)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ...ir.graph import Graph
from ...ir.types import DType, IRError, TensorSpec
from ..base import Program
from .graph import NAME, to_model_proto
from .runtime import session_options


class OnnxProgram(Program):
    """A graph lowered to a ``ModelProto`` (``model``) run by an ``InferenceSession`` (``session``,
    CPU provider). Native arrays are ``onnxruntime.OrtValue``; bfloat16 crosses the boundary as
    float32."""

    backend = NAME

    def __init__(self, graph: Graph, opset: int | None = None):
        import onnxruntime as ort

        super().__init__(graph)
        self._opset = opset
        # large constants (the weights) stay numpy arrays the session reads in place: no copy in the
        # proto, none in its serialised bytes, none in the session (spec/backends-onnx.md, memory)
        in_memory: dict = {}
        proto = to_model_proto(graph, opset, in_memory=in_memory)
        opts = session_options()
        if in_memory:
            opts.add_external_initializers(
                list(in_memory), [ort.OrtValue.ortvalue_from_numpy(a) for a in in_memory.values()]
            )
        self.session = ort.InferenceSession(
            proto.SerializeToString(), opts, providers=["CPUExecutionProvider"]
        )
        self._proto = proto  # small: the placeholders hold no data
        self._in_memory = in_memory  # the session reads these buffers: keep them alive with it
        self._ort = ort

    @property
    def model(self) -> Any:
        """The standalone ``ModelProto`` (weights inside), built from the graph on each access
        (``export`` writes the weights from the arrays instead, without this copy)."""
        return to_model_proto(self.graph, self._opset)

    def _is_native(self, x: Any) -> bool:
        return isinstance(x, self._ort.OrtValue)

    def _native_shape(self, x: Any) -> tuple:
        return tuple(int(d) for d in x.shape())

    def _native_dtype(self, x: Any) -> DType:
        t = x.data_type()  # e.g. "tensor(float)"
        name = t[len("tensor(") : -1]
        return {"float": DType.float32, "double": DType.float64, "float16": DType.float16}.get(name) or DType(
            name
        )

    def _from_numpy(self, x: np.ndarray, spec: TensorSpec) -> Any:
        if spec.dtype is DType.bfloat16:
            return x.astype(np.float32)
        return x

    def _to_numpy(self, x: Any, spec: TensorSpec) -> np.ndarray:
        arr = x.numpy() if isinstance(x, self._ort.OrtValue) else np.asarray(x)
        if spec.dtype is DType.bfloat16:
            return arr.astype(spec.dtype.to_numpy())
        return arr

    def _run(self, args: list, env: dict) -> list:
        feeds = dict(zip(self.input_names, args))
        if args and all(isinstance(a, self._ort.OrtValue) for a in args):
            return list(self.session.run_with_ort_values(self.output_names, feeds))
        return list(
            self.session.run(self.output_names, {k: np.asarray(v, order="C") for k, v in feeds.items()})
        )

    def export(self, path: str, external_data_threshold: int | None = None) -> str:
        """Write the model to ``path`` (``artefact.save_model``: atomic; external data once the
        model reaches ``external_data_threshold`` bytes, 2 GiB by default)."""
        from .artefact import save_model

        return save_model(self._proto, path, external_data_threshold, in_memory=self._in_memory)


def lower(graph: Graph, opset: int | None = None, **options: Any) -> OnnxProgram:
    """The graph as an :class:`OnnxProgram`; the only option is ``opset`` (21 by default, 20 minimum)."""
    if options:
        raise IRError(f"the onnx backend takes the option opset=<int> only, got {sorted(options)}")
    graph.check()
    return OnnxProgram(graph, opset)
