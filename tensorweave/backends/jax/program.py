"""The jax program: :func:`run_graph` evaluates a graph with jnp/lax calls through the rule table
while jax traces it; :class:`JaxProgram` is ``jax.jit`` of it (spec/backends-jax.md)."""

from __future__ import annotations

import os
import threading
import time
from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.core import Tracer

from ...ir.graph import Graph, Value
from ...ir.types import DType, IRError, TensorSpec, as_dtype
from ...log import logger
from ..base import Program, Site, eval_dim, resolve_symbolic_attrs, symbol_plan
from . import export_cache
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
    (it inlines into an enclosing ``jit``); ``jit`` is the bare ``jax.jit`` function.

    A top-level call with concrete arrays (``_run``) goes through the export cache instead
    (:mod:`~tensorweave.backends.jax.export_cache`): per input signature, a ``jax.jit`` of a
    serialised ``jax.export`` program, read from disk when an earlier process (or program)
    stored it, else exported once and stored; the plain jit when that cannot be done."""

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
        # input signature -> jit of a deserialised jax.export program (None: use the plain jit)
        self._exported: dict[tuple, Callable | None] = {}
        self._export_lock = threading.Lock()

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
        if any(isinstance(a, Tracer) for a in args):  # inside a caller's trace: inline
            return list(self.jitted(self.hoisted_arrays, *args))
        sig = tuple((a.shape, a.dtype, a.sharding) for a in args)
        call = self._exported.get(sig, _MISSING)
        if call is _MISSING:
            with self._export_lock:
                call = self._exported.get(sig, _MISSING)
                if call is _MISSING:
                    return self._first_call(sig, args)
        if call is None:
            return list(self.jitted(self.hoisted_arrays, *args))
        with x64():
            return list(call(self.hoisted_arrays, *args))

    def _first_call(self, sig: tuple, args: list) -> list:
        """The first call for input signature ``sig``: through the export cache when it can be
        used, and the plain jit for ``sig`` from then on if that call fails (a damaged entry that
        deserialised; the plain jit then raises a genuine error itself)."""
        call, path = self._exported_call(args)
        if call is not None:
            try:
                with x64():
                    outs = list(call(self.hoisted_arrays, *args))
                self._exported[sig] = call
                return outs
            except Exception as exc:
                first = (str(exc).splitlines() or [type(exc).__name__])[0]
                logger.debug("jax export cache: %s failed to run (%s); using jit", path, first[:200])
                export_cache.remove(path)
        self._exported[sig] = None
        return list(self.jitted(self.hoisted_arrays, *args))

    def _exported_call(self, args: Sequence[Any]) -> tuple[Callable | None, str]:
        """``(jax.jit(exported.call), entry path)`` of this program for ``args``' shapes and
        dtypes, the ``jax.export`` program read from the export cache or exported and written
        there; ``(None, "")`` (the plain jit) when the cache is off or anything fails (logged at
        debug level, never raised)."""
        if any(len(a.sharding.device_set) != 1 for a in args):  # exported for one device
            return None, ""
        directory = export_cache.export_cache_dir()
        if directory is None:
            return None, ""
        from jax import export as jexport

        try:
            with x64():
                structs = [jax.ShapeDtypeStruct(a.shape, a.dtype) for a in (*self.hoisted_arrays, *args)]
            key = export_cache.program_key(self.graph, self.hoisted, [(s.shape, s.dtype) for s in structs])
        except Exception as exc:  # a key must never stop the program from running
            logger.debug("jax export cache not used for %s: %s", self.graph.name, exc)
            return None, ""
        if key is None or export_cache.is_unexportable(directory, key):
            return None, ""
        path = export_cache.entry_path(directory, key)
        exported = export_cache.read(path)
        if exported is not None:
            logger.info("jax export cache: read %s for %s", os.path.basename(path), self.graph.name)
            return jax.jit(exported.call), path
        start = time.perf_counter()
        n = len(self.hoisted_arrays)
        try:
            with x64():
                data = jexport.export(self.jit)(tuple(structs[:n]), *structs[n:]).serialize()
                # run what the next process will read, so that it compiles (and the XLA cache
                # keys) the very same module
                exported = jexport.deserialize(data)
        except Exception as exc:  # e.g. an op jax cannot export: trace the plain jit instead
            first = (str(exc).splitlines() or [type(exc).__name__])[0]
            logger.debug(
                "jax export of %s failed (%s: %s); using jit",
                self.graph.name,
                type(exc).__name__,
                first[:200],
            )
            export_cache.mark_unexportable(directory, key)
            return None, ""
        seconds = time.perf_counter() - start
        if seconds < export_cache.MIN_EXPORT_SECONDS:
            logger.debug("jax export cache: %s exported in %.3f s, not stored", self.graph.name, seconds)
        elif export_cache.write(path, data):
            logger.info(
                "jax export cache: wrote %s for %s (%d KB, traced and exported in %.1f s)",
                os.path.basename(path),
                self.graph.name,
                len(data) // 1024,
                seconds,
            )
        # not written (fast to export, a read-only directory, ...): this process still runs the
        # exported program, so every process compiles the same module for this key
        return jax.jit(exported.call), path

    def export(self, path: str, allow_zero: Sequence[str] = ()) -> str:
        """Serialised StableHLO (``jax.export``) with one symbolic dimension per IR symbol, written
        atomically (see :func:`tensorweave.backends.jax.artefact.export_stablehlo`)."""
        from .artefact import export_stablehlo

        with x64():
            return export_stablehlo(self, path, allow_zero)


_MISSING: Any = object()

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
