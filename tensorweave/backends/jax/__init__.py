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

64-bit types: the IR has int64 and float64, which JAX disables by default. Importing this backend
turns on ``jax_enable_x64`` (a process-wide JAX setting, spec/backends-jax.md); every array is still
created with the IR's exact dtype.
"""

from __future__ import annotations

import jax

jax.config.update("jax_enable_x64", True)  # before any jnp array is built (see the docstring)

from .artefact import load  # noqa: E402
from .program import HOIST_ABOVE, JaxProgram, JaxSite, lower, run_graph, symbol_env  # noqa: E402
from .rules import LOWERINGS  # noqa: E402
from .runtime import NAME, jdt  # noqa: E402

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
]
