"""A traced graph as a Flax (``flax.linen``) module whose weights live in Flax's ``params`` collection.

``TracedModule(graph)``: every *named* constant of the graph (a weight given a name when traced,
e.g. ``tw.ir.trace.constant(w, name="dense.weight")``) becomes a Flax parameter of that name,
initialised to the traced value (``init`` ignores its PRNG key: the values come from the graph).
``apply({"params": p}, *inputs)`` runs the graph with ``p`` in place of those constants, so
``jax.grad`` and optax train them like any Flax model. Unnamed constants stay fixed literals.

One output -> an array; several -> a tuple in ``graph.output_names`` order. Inputs may be numpy or
jax arrays of the graph's dtypes (anything else is a one-line error). Linen rather than NNX:
a linen module is a pure description, so ``init``/``apply`` compose with ``jax.jit``/``grad``/``vmap``.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from ...ir.graph import Graph
from ...ir.types import IRError, as_dtype, bind_symbols
from ..base import symbol_plan
from .program import run_graph, symbol_env
from .runtime import jdt


def named_constants(graph: Graph) -> dict[str, np.ndarray]:
    """name -> numpy array of every named constant (the graph's weights)."""
    return {v.name: arr for v, arr in graph.constants.items() if v.name}


class TracedModule(nn.Module):
    """Runs ``graph`` with its named constants as Flax parameters."""

    graph: Graph

    @nn.compact
    def __call__(self, *inputs: Any) -> Any:
        graph = self.graph
        specs = graph.input_specs
        if len(inputs) != len(specs):
            raise IRError(f"the module takes {len(specs)} input(s) {graph.input_names}, got {len(inputs)}")
        for x, spec, name in zip(inputs, specs, graph.input_names):
            if not hasattr(x, "dtype") or not hasattr(x, "shape"):
                raise IRError(f"input {name!r} is a {type(x).__name__}; pass a numpy or jax array")
            dt = as_dtype(np.dtype(x.dtype).name)
            if dt != spec.dtype:
                raise IRError(f"input {name!r} has dtype {dt}, expected {spec.dtype}; cast it with .astype")
        shapes = [tuple(x.shape) for x in inputs]
        if all(isinstance(d, (int, np.integer)) for s in shapes for d in s):  # not under jax.export
            bind_symbols(specs, shapes)  # ranks, static sizes, consistent symbols
        weights = {}
        for v, arr in graph.constants.items():
            if v.name:
                weights[v] = self.param(v.name, lambda _rng, a=arr, dt=v.dtype: jnp.asarray(a, dtype=jdt(dt)))
        xs = [jnp.asarray(x) for x in inputs]
        outs = run_graph(graph, xs, symbol_env(symbol_plan(specs), xs), weights)
        return outs[0] if len(outs) == 1 else tuple(outs)
