"""One optimizer training step as an ONNX graph.

``export_step(rule, params, path)`` traces ``rule.update`` for parameters shaped like ``params``
(arrays or ``TensorSpec``s; any dict/list/tuple pytree), lowers it with the onnx backend and
writes the ModelProto with ``Program.export`` (temporary file + rename; external data past the
backend's threshold). The graph's inputs are, by name, ``params/<name>``, ``grads/<name>``,
``state/<path>`` (``state/step`` is int64: the updates already applied) and ``hyper/lr``
(float64, when the rule's lr is a number; a scheduled lr is computed inside the graph from
``state/step``); its outputs are ``new_params/<name>`` and ``new_state/<path>`` with the same
specs, so a host loop (onnxruntime, or ORT training-free deployments) feeds outputs back as inputs.
``initial_state(rule, params)`` gives the state feed for the first step.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..frontends.optim.base import TracedUpdate, UpdateRule, named_leaves, trace_update


def export_step(
    rule: UpdateRule, params: Any, path: str | os.PathLike, hyper: dict | None = None, **export_options: Any
) -> TracedUpdate:
    """Write the ONNX training-step graph of ``rule`` for ``params`` to ``path``; returns the
    :class:`TracedUpdate` (``input_names``, ``output_names``, ``flatten``, ``unflatten``)."""
    from ..backends import lower

    if not isinstance(rule, UpdateRule):
        raise ValueError(f"export_step needs a tensorweave update rule, got {type(rule).__name__}")
    path = os.fspath(path)
    if not path.endswith(".onnx"):
        raise ValueError(f"export_step writes an ONNX model; give a path ending in .onnx, got {path!r}")
    traced = trace_update(rule, params, hyper, name="optimizer_step")
    lower(traced.graph, "onnx").export(path, **export_options)
    return traced


def initial_state(rule: UpdateRule, params: Any) -> dict[str, np.ndarray]:
    """``{"state/<path>": array}``: the ONNX step's state inputs before the first update."""
    from ..ir.control import tree_flatten, tree_unflatten

    leaves, treedef = tree_flatten(params)
    example = tree_unflatten(treedef, [_zeros(p) for p in leaves])
    return {n: np.asarray(v) for n, v in named_leaves(rule.init(example), "state")}


def _zeros(p: Any) -> np.ndarray:
    from ..ir.types import TensorSpec

    if isinstance(p, TensorSpec):
        return np.zeros(tuple(int(d) for d in p.shape), p.dtype.to_numpy())
    arr = np.asarray(p)
    return np.zeros(arr.shape, arr.dtype)


__all__ = ["export_step", "initial_state"]
