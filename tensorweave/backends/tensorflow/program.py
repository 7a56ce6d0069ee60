"""The TensorFlow program: a graph becomes one ``tf.function`` with a None-dim input signature.

:func:`run_graph` builds the TF ops of a graph through the rule table while ``tf.function`` traces;
:class:`TFProgram` holds the function, its signature and the converted constants
(spec/backends-tensorflow.md)."""

from __future__ import annotations

import os
import re
from typing import Any, Callable, Sequence

import numpy as np
import tensorflow as tf

from ...ir.graph import Graph, Value
from ...ir.ops import OPS
from ...ir.types import DType, IRError, TensorSpec
from ...log import logger
from ..base import Program, Site, eval_dim, resolve_symbolic_attrs, symbol_plan
from ..cache import cache_subdir
from .rules import LOWERINGS
from .runtime import BOUNDARY, NAME, mask32, static_shape, tf_name

#: Constants at least this large become non-trainable tf.Variables (kept in the SavedModel's
#: variables/ files, so an export is not bound by the 2 GiB protobuf limit); smaller ones are
#: eager tf constants captured by the function.
VARIABLE_BYTES = 1 << 20


class TFSite(Site):
    """A :class:`~tensorweave.backends.base.Site` that can also build the node's closed subgraphs
    (``subgraph(key)``: a function of TF tensors returning the subgraph's outputs)."""

    __slots__ = ("env", "consts")

    def __init__(self, node: Any, args: Sequence[Any], attrs: dict, env: dict, consts: dict):
        super().__init__(node, args, attrs)
        self.env = env
        self.consts = consts

    def subgraph(self, key: str) -> Callable[..., list]:
        graph, env, consts = self.node.subgraphs[key], self.env, self.consts
        return lambda *xs: run_graph(graph, list(xs), env, consts)


def run_graph(graph: Graph, args: list, env: dict, consts: dict) -> list:
    """Build the TF ops of ``graph`` on carried-dtype tensors ``args`` (inside a tf.function).

    ``env`` maps symbols to int64 scalars; ``consts`` maps every constant Value (of the graph and
    its subgraphs) to its tf constant or variable. A uint32 result of an op that wraps
    (``OPS[op].wraps_uint32``) is masked to 32 bits; each result gets its IR static shape.
    """
    vals: dict[Value, Any] = dict(zip(graph.inputs, args))
    for v in graph.constants:
        c = consts[v]
        vals[v] = tf.convert_to_tensor(c) if isinstance(c, tf.Variable) else c
    for node in graph.nodes:
        site = TFSite(node, [vals[v] for v in node.inputs], resolve_symbolic_attrs(node, env), env, consts)
        out = LOWERINGS[node.op](site)
        outs = out if isinstance(out, (tuple, list)) else (out,)
        wraps = OPS[node.op].wraps_uint32
        for v, o in zip(node.outputs, outs):
            if wraps and v.dtype is DType.uint32:
                o = mask32(o)
            o.set_shape(static_shape(v.spec))
            vals[v] = o
    return [vals[v] for v in graph.outputs]


def _constants(graph: Graph, prefix: str = "", seen: dict | None = None) -> dict:
    """Every constant of ``graph`` and its subgraphs as a carried-dtype tf constant, converted once
    (large ones as non-trainable tf.Variables). The same array in several (sub)graphs — a weight
    read by the prompt step and by the loop body — is converted once and shared."""
    seen = {} if seen is None else seen
    out: dict = {}
    for k, (v, arr) in enumerate(graph.constants.items()):
        key = (id(arr), v.dtype)
        if key in seen and seen[key][0] is arr:
            out[v] = seen[key][1]
            continue
        a = np.asarray(arr)
        if v.dtype is DType.uint32:
            a = a.astype(np.int64)
        if a.nbytes >= VARIABLE_BYTES:
            out[v] = tf.Variable(a, trainable=False, name=tf_name(v.name or f"{prefix}constant_{k}"))
        else:
            out[v] = tf.constant(a)
        seen[key] = (arr, out[v])
    for j, node in enumerate(graph.nodes):
        for key_, sub in node.subgraphs.items():
            out.update(_constants(sub, f"{prefix}{j}_{key_}_", seen))
    return out


def _unique(names: Sequence[str]) -> list[str]:
    out: list[str] = []
    for n in names:
        base, k = tf_name(n), 1
        cand = base
        while cand in out:
            cand = f"{base}_{k}"
            k += 1
        out.append(cand)
    return out


class TFProgram(Program):
    """A graph lowered to one ``tf.function`` (``self.fn``) with a None-dim input signature."""

    backend = NAME

    def __init__(self, graph: Graph, jit_compile: bool = False):
        super().__init__(graph)
        self.jit_compile = jit_compile
        self.constants = _constants(graph)
        shared = {id(c): c for c in self.constants.values() if isinstance(c, tf.Variable)}
        self.variables = list(shared.values())  # a weight shared by subgraphs is one variable
        self.tf_input_names = _unique(self.input_names)
        self.tf_output_names = _unique(self.output_names)
        self.signature = [
            tf.TensorSpec(static_shape(s), BOUNDARY[s.dtype], name=n)
            for s, n in zip(self.input_specs, self.tf_input_names)
        ]
        plan = symbol_plan(self.input_specs)
        specs, out_specs, consts = self.input_specs, self.output_specs, self.constants

        def fn(*xs: Any) -> tuple:
            xs = [tf.cast(x, tf.int64) if s.dtype is DType.uint32 else x for x, s in zip(xs, specs)]
            env: dict = {}
            for sym, i, axis, rest in plan:  # symbol = shape(input)[axis] - rest
                size = tf.shape(xs[i], out_type=tf.int64)[axis]
                env[sym] = size if (isinstance(rest, int) and rest == 0) else size - eval_dim(rest, env)
            outs = run_graph(graph, list(xs), env, consts)
            return tuple(
                tf.cast(o, tf.uint32) if s.dtype is DType.uint32 else tf.identity(o)
                for o, s in zip(outs, out_specs)
            )

        self._trace = fn
        self.fn = tf.function(fn, input_signature=self.signature, jit_compile=jit_compile, autograph=False)

    # ---- conversions (Program hooks)
    def _is_native(self, x: Any) -> bool:
        return isinstance(x, (tf.Tensor, tf.Variable))

    def _native_dtype(self, x: Any) -> Any:
        try:
            return DType(x.dtype.name)
        except ValueError:  # not an IR dtype: the caller's error message names it
            return x.dtype.name

    def _from_numpy(self, x: np.ndarray, spec: TensorSpec) -> Any:
        return tf.constant(x)

    def _to_numpy(self, x: Any, spec: TensorSpec) -> np.ndarray:
        return np.asarray(x.numpy())

    def _run(self, args: list, env: dict) -> list:
        try:
            return list(self.fn(*args))
        except tf.errors.DataLossError as exc:
            bad = _damaged_xla_entry(str(exc))
            if bad is None:
                raise
            logger.warning("TensorFlow's XLA cache entry %s is damaged: removed, compiling again", bad)
            os.remove(bad)
            # TF remembers the failed compile of this function: a new tf.function compiles afresh
            self.fn = tf.function(
                self._trace, input_signature=self.signature, jit_compile=self.jit_compile, autograph=False
            )
            return list(self.fn(*args))

    def export(self, path: str) -> str:
        """A SavedModel directory at ``path`` (see
        :func:`tensorweave.backends.tensorflow.artefact.export_saved_model`)."""
        from .artefact import export_saved_model

        return export_saved_model(self, path)


def lower(graph: Graph, jit_compile: bool = False, **options: Any) -> TFProgram:
    """Lower ``graph`` to a :class:`TFProgram`; ``jit_compile=True`` compiles it with XLA."""
    if options:
        raise IRError(
            f"the tensorflow backend takes the option jit_compile=True/False only, got {sorted(options)}"
        )
    if not isinstance(jit_compile, bool):
        raise IRError(f"the tensorflow backend's jit_compile must be True or False, got {jit_compile!r}")
    graph.check()
    if jit_compile:
        use_xla_persistent_cache()
    return TFProgram(graph, jit_compile=jit_compile)


#: the TF_XLA_FLAGS flag naming XLA's persistent compilation cache directory
XLA_CACHE_FLAG = "--tf_xla_persistent_cache_directory"


def use_xla_persistent_cache() -> str | None:
    """Point TensorFlow's persistent XLA cache at ``<cache root>/tensorflow-xla`` (through
    ``TF_XLA_FLAGS``, read when the process first compiles with XLA), unless the flag is set
    already (the user's directory is returned) or the cache is off: a new process then loads the
    executables of ``jit_compile`` programs an earlier one compiled. Returns the directory (None:
    none set here)."""
    flags = os.environ.get("TF_XLA_FLAGS", "")
    given = re.search(re.escape(XLA_CACHE_FLAG) + r"=(\S+)", flags)
    if given:
        return given.group(1)
    path = cache_subdir("tensorflow-xla")
    if path is None:
        return None
    os.environ["TF_XLA_FLAGS"] = f"{flags} {XLA_CACHE_FLAG}={path}".strip()
    return path


def _damaged_xla_entry(message: str) -> str | None:
    """The file of tensorweave's XLA cache a DataLossError names (TF cannot parse an entry, e.g.
    one cut short by a killed process), or None."""
    path = cache_subdir("tensorflow-xla")
    match = re.search(r"(\S+\.pb)", message)
    if path is None or match is None:
        return None
    entry = os.path.abspath(match.group(1))
    inside = os.path.dirname(entry) == os.path.abspath(path)
    return entry if inside and os.path.isfile(entry) else None
