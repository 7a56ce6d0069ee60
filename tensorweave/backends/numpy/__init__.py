"""The numpy backend: the reference interpreter of the whole IR (spec/backends-numpy.md).

Contract (spec/backends.md): ``NAME``, ``LOWERINGS`` (a :class:`~tensorweave.backends.base.Rules`
table: every registry op -> ``rule(site)``, each calling the op's reference implementation),
``lower(graph) -> NumpyProgram`` and ``load(path) -> NumpyProgram`` (an IR JSON file written by
``NumpyProgram.export`` / :func:`tensorweave.ir.serialize.save`, lowered to numpy).
``run_graph(graph, args, env)`` interprets a graph directly (the tests use it).

Modules: ``rules`` (the table), ``program`` (``run_graph``, ``NumpyProgram``, ``lower``).
"""

from __future__ import annotations

from .program import NAME, NumpyProgram, load, lower, run_graph
from .rules import LOWERINGS

__all__ = ["LOWERINGS", "NAME", "NumpyProgram", "load", "lower", "run_graph"]
