"""How parameters enter a traced program.

A model's parameters are a flat ``{Hugging Face name: array}`` dict. Inside a trace they become
**named constants** (``bind_params``): each backend converts a constant once, when the graph is
lowered (torch tensors captured by the generated code, jnp arrays, tf constants, ONNX initializers
named like the parameter, Flax ``params``), never per call. Bind once per trace and pass the bound
dict to every ``forward`` call of that trace (prefill and loop body share the same constants; a
``while_loop`` body captures them as operands).

To make weights program **inputs** instead (e.g. to swap weights without re-lowering), trace with
``param_specs(params)`` as extra input specs and build the dict from those inputs.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from ...ir import TracedArray
from ...ir.trace import constant, current_builder
from ...ir.types import DType, IRError, TensorSpec, from_numpy_dtype


def bind_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Numpy parameters as named constants of the current trace (traced arrays pass through)."""
    if current_builder() is None:
        raise IRError("bind_params needs a running trace: call it inside the function given to tw.trace")
    return {
        k: v if isinstance(v, TracedArray) else constant(np.asarray(v), name=k) for k, v in params.items()
    }


def _dtype(arr: np.ndarray) -> DType:
    return DType.bfloat16 if arr.dtype.name == "bfloat16" else from_numpy_dtype(arr.dtype)


def param_specs(params: Mapping[str, Any]) -> list[TensorSpec]:
    """One named ``TensorSpec`` per parameter (in the dict's order), to trace weights as inputs."""
    return [TensorSpec(tuple(np.shape(v)), _dtype(np.asarray(v)), k) for k, v in params.items()]


class ParamView(Mapping):
    """Read-only view used inside ``forward``: a numpy parameter that was not bound becomes a
    named constant on first access (bound / traced parameters pass through)."""

    def __init__(self, params: Mapping[str, Any]):
        self._params = params
        self._bound: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        v = self._params[name]
        if isinstance(v, TracedArray):
            return v
        if name not in self._bound:
            self._bound[name] = constant(np.asarray(v), name=name)
        return self._bound[name]

    def __contains__(self, name: object) -> bool:
        return name in self._params

    def __iter__(self):
        return iter(self._params)

    def __len__(self) -> int:
        return len(self._params)
