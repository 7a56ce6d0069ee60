"""The jax program: :func:`run_graph` evaluates a graph with jnp/lax calls through the rule table
while jax traces it; :class:`JaxProgram` is ``jax.jit`` of it (spec/backends-jax.md)."""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ...ir.graph import Graph, Value
from ...ir.types import DType, IRError, TensorSpec, as_dtype
from ..base import Program, Site, eval_dim, resolve_symbolic_attrs, symbol_plan
from .rules import LOWERINGS
from .runtime import NAME, jdt, use_persistent_cache, x64

# Constants with more elements than this are device arrays passed to the compiled function
# (converted once, never re-embedded or constant-folded per compile); smaller ones are literals.
HOIST_ABOVE = 16


class JaxSite(Site):
    """A :class:`~tensorweave.backends.base.Site` that can also run the node's closed subgraphs
    (``subgraph(key)``: a function of jax arrays returning the subgraph's outputs)."""

    __slots__ = ("env",)

    def __init__(self, node: Any, args: Sequence[Any], attrs: dict, env: dict):
        super().__init__(node, args, attrs)
        self.env = env

    def subgraph(self, key: str) -> Callable[..., list]:
        graph, env = self.node.subgraphs[key], self.env
        return lambda *xs: run_graph(graph, list(xs), env)


def run_graph(graph: Graph, args: list, env: dict, constants: Mapping[Value, Any] | None = None) -> list:
    """Evaluate ``graph`` with jax ops (called while jit / export / Flax trace it). ``constants``
    supplies arrays for some of the graph's constants (hoisted weights, Flax parameters); the
    others are converted from numpy here, so they become literals of the compiled program.
    ``env`` holds the symbol values: ints under jit, jax symbolic dimensions under jax.export.
    Runs with 64-bit types on (:func:`~tensorweave.backends.jax.runtime.x64`), also inside a
    caller's trace (a Flax ``apply``, an enclosing ``jit``) that has them off."""
    with x64():
        return _run_graph(graph, args, env, constants)


def _run_graph(graph: Graph, args: list, env: dict, constants: Mapping[Value, Any] | None) -> list:
    vals: dict = dict(zip(graph.inputs, args))
    for v, arr in graph.constants.items():
        vals[v] = (
            constants[v] if constants is not None and v in constants else jnp.asarray(arr, dtype=jdt(v.dtype))
        )
    for node in graph.nodes:
        site = JaxSite(node, [vals[v] for v in node.inputs], resolve_symbolic_attrs(node, env), env)
        out = LOWERINGS[node.op](site)
        outs = out if isinstance(out, (tuple, list)) else (out,)
        for v, o in zip(node.outputs, outs):
            vals[v] = o
    return [vals[v] for v in graph.outputs]


def symbol_env(plan: list, xs: Sequence[Any]) -> dict:
    """Symbol values read from the input shapes (ints under jit, symbolic dims under jax.export)."""
    env: dict = {}
    for s, i, ax, rest in plan:
        env[s] = (
            xs[i].shape[ax] if isinstance(rest, int) and rest == 0 else xs[i].shape[ax] - eval_dim(rest, env)
        )
    return env


class JaxProgram(Program):
    """``jax.jit`` of :func:`run_graph`: traced and compiled once per input shapes (jit's cache).

    ``jitted(hoisted_arrays, *xs)`` calls the jit function with 64-bit types on for the call only
    (it inlines into an enclosing ``jit``); ``jit`` is the bare ``jax.jit`` function."""

    backend = NAME

    def __init__(self, graph: Graph):
        super().__init__(graph)
        self.plan = symbol_plan(graph.input_specs)
        self.hoisted = [v for v, a in graph.constants.items() if a.size > HOIST_ABOVE or v.name]
        with x64():
            self.hoisted_arrays = tuple(
                jnp.asarray(graph.constants[v], dtype=jdt(v.dtype)) for v in self.hoisted
            )

        def fn(hoisted: tuple, *xs: Any) -> tuple:
            return tuple(
                run_graph(graph, list(xs), symbol_env(self.plan, xs), dict(zip(self.hoisted, hoisted)))
            )

        self.fn = fn
        self.jit = jax.jit(fn)

    def jitted(self, hoisted: tuple, *xs: Any) -> tuple:
        """The jit function called with 64-bit types on (for this call only)."""
        with x64():
            return self.jit(hoisted, *xs)

    def _is_native(self, x: Any) -> bool:
        return isinstance(x, jax.Array)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """``Program.__call__``; with JAX's 64-bit types off (its default), a jax input in the 32-bit
        form JAX gives a 64-bit IR dtype (int32 for int64, float32 for float64) is widened first
        (lossless), since such an input cannot be created as int64 / float64 there."""
        if not jax.config.jax_enable_x64:
            bound = self.bind(args, kwargs)
            args = tuple(_widen(a, spec) for a, spec in zip(bound, self.input_specs))
            kwargs = {}
        return super().__call__(*args, **kwargs)

    def _from_numpy(self, x: np.ndarray, spec: TensorSpec) -> Any:
        with x64():
            return jnp.asarray(x, dtype=jdt(spec.dtype))

    def _to_numpy(self, x: Any, spec: TensorSpec) -> np.ndarray:
        return np.asarray(x)

    def _native_dtype(self, x: Any) -> DType:
        return as_dtype(np.dtype(x.dtype))  # an unknown dtype (e.g. int8) is a one-line IRError

    def _run(self, args: list, env: dict) -> list:
        return list(self.jitted(self.hoisted_arrays, *args))

    def export(self, path: str, allow_zero: Sequence[str] = ()) -> str:
        """Serialised StableHLO (``jax.export``) with one symbolic dimension per IR symbol, written
        atomically (see :func:`tensorweave.backends.jax.artefact.export_stablehlo`)."""
        from .artefact import export_stablehlo

        with x64():
            return export_stablehlo(self, path, allow_zero)


_NARROW = {DType.int64: np.dtype("int32"), DType.float64: np.dtype("float32")}


def _widen(x: Any, spec: TensorSpec) -> Any:
    narrow = _NARROW.get(spec.dtype)
    if narrow is None or not isinstance(x, jax.Array) or np.dtype(x.dtype) != narrow:
        return x
    with x64():
        return x.astype(jdt(spec.dtype))


def lower(graph: Graph, **options: Any) -> JaxProgram:
    if options:
        raise IRError(f"the jax backend takes no options, got {sorted(options)}")
    graph.check()
    use_persistent_cache()  # compiled executables persist across processes (runtime.CACHE_ENV)
    return JaxProgram(graph)
