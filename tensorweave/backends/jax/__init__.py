"""The JAX backend: a graph becomes a function over ``jax.numpy``/``jax.lax``, wrapped in ``jax.jit``
(spec/backends-jax.md).

Contract (spec/backends.md): ``NAME``, ``LOWERINGS`` (a :class:`~tensorweave.backends.base.Rules`
table covering every registry op; every entry is ``rule(site)``), ``lower(graph) -> JaxProgram``
and ``load(path)`` (a StableHLO file written by ``JaxProgram.export``, as a
``jax.export.Exported``).

Modules: ``rules`` (the rule table and the helpers that keep the reference's semantics),
``program`` (``run_graph``, ``JaxProgram``, ``lower``), ``artefact`` (StableHLO export and
``load``), ``runtime`` (dtype helpers both use) and ``flax_module`` (``TracedModule``: a graph
whose named constants are Flax params; imported on demand, it needs flax).

``run_graph`` walks the graph while jax traces it, once per input shapes (jit's cache); the
compiled XLA program then runs with no per-op Python work. Symbols are read from the input shapes:
Python ints under jit, jax symbolic dimensions under ``jax.export``.

64-bit types: the IR has int64 and float64, which JAX disables by default. This backend never
touches the process-wide ``jax_enable_x64`` flag: lowering, tracing and every call of a jitted
program run inside :func:`x64` (``jax.enable_x64``, scoped to the block and thread), so other JAX
code in the process keeps its float32 defaults (spec/backends-jax.md). Every array is created with
the IR's exact dtype.
"""

from __future__ import annotations

from .artefact import load
from .program import HOIST_ABOVE, JaxProgram, JaxSite, lower, run_graph, symbol_env
from .rules import LOWERINGS
from .runtime import CACHE_ENV, NAME, cache_root, jdt, use_persistent_cache, x64

__all__ = [
    "HOIST_ABOVE",
    "LOWERINGS",
    "NAME",
    "JaxProgram",
    "JaxSite",
    "jdt",
    "load",
    "lower",
    "run_graph",
    "symbol_env",
    "x64",
    "CACHE_ENV",
    "cache_root",
    "use_persistent_cache",
]
