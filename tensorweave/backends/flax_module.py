"""A traced graph as a Flax module whose weights live in Flax's ``params`` collection.

``TracedModule(graph)`` (a ``flax.linen.Module``): every *named* constant of the graph (a weight
given a name when traced, e.g. ``tw.ir.trace.constant(w, name="dense.weight")``) becomes a Flax
parameter initialised to the traced value; ``apply({"params": p}, *inputs)`` runs the graph with
those parameters, so ``jax.grad`` and optax train them like any Flax model.
"""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from ..ir.graph import Graph
from .base import eval_dim, symbol_plan
from .jax import _jdt, run_graph


def named_constants(graph: Graph) -> dict[str, Any]:
    """name -> numpy array of every named constant (the graph's weights)."""
    return {v.name: arr for v, arr in graph.constants.items() if v.name}


class TracedModule(nn.Module):
    """Runs ``graph`` with its named constants as Flax parameters."""

    graph: Graph

    @nn.compact
    def __call__(self, *inputs: Any) -> Any:
        params = {}
        for v, arr in self.graph.constants.items():
            if v.name:
                params[v.name] = self.param(v.name, lambda rng, a=arr, dt=v.dtype: jnp.asarray(a, dtype=_jdt(dt)))
        env: dict = {}
        for s, i, ax, rest in symbol_plan(self.graph.input_specs):
            env[s] = inputs[i].shape[ax] - eval_dim(rest, env) if not (isinstance(rest, int) and rest == 0) \
                else inputs[i].shape[ax]
        outs = run_graph(self.graph, [jnp.asarray(x, dtype=_jdt(s.dtype)) for x, s in zip(inputs, self.graph.input_specs)],
                         env, params)
        return outs[0] if len(outs) == 1 else tuple(outs)
